// The op interface every model is written against (spec §9 numerics). Activations are float32
// tensors, contiguous, row-major; weights may be F32, BF16 or F16 views into the checkpoint.
// The backend is chosen by where the tensor lives (today: CPU only, src/ops/cpu/). Every op is
// tested against a naive double-precision reference in tests/test_ops.cpp; speed claims live in
// bench/bench_ops.cpp.
//
// Precision policy: in Precision::F32 every product is computed in float32 from the (upcast)
// stored weights, matching the golden reference. In Precision::BF16 the GEMM inputs (activations
// and weights) are bf16 with fp32 accumulation, as the reference does on GPU; norms, softmax,
// RoPE and all elementwise math stay fp32.
#pragma once
#include <vector>

#include "core/tensor.hpp"
#include "ovis/types.hpp"

namespace ovis::ops {

using ovis::Precision;  // F32 | BF16 here (Auto is resolved before anything runs)
void set_precision(Precision p);
Precision precision();
// BF16 where the CPU has AVX512_BF16 (the GEMMs are fast there), else F32.
Precision default_precision();
bool cpu_has_avx512_bf16();
// Sets the precision for a scope and restores the previous one on exit (also on exceptions).
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p) : saved_(precision()) { set_precision(p); }
  ~PrecisionScope() { set_precision(saved_); }
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  Precision saved_;
};
void set_num_threads(int n);  // <= 0: OMP_NUM_THREADS if set, else all cores
int num_threads();

// ---- GEMM ----
// y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).  (PyTorch Linear layout.)
Tensor linear(const Tensor& x, const Tensor& w, const Tensor* bias = nullptr);
// y[M,N] = a[M,K] · b[K,N]; b may be a weight (any float dtype), a is f32.
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- normalisation (over the last dim unless stated) ----
// RMSNorm: x / sqrt(mean(x²) + eps) * w  (w may be null).
Tensor rms_norm(const Tensor& x, const Tensor* w, float eps);
// LayerNorm with optional affine weight/bias.
Tensor layer_norm(const Tensor& x, const Tensor* w, const Tensor* b, float eps);
// GroupNorm over x [C, H, W] (batch 1) with affine weight/bias [C].
Tensor group_norm(const Tensor& x, int groups, const Tensor& w, const Tensor& b, float eps);

// ---- activations / elementwise (in place where suffixed _) ----
void silu_(Tensor& x);
void gelu_tanh_(Tensor& x);
// out = silu(gate) * up, same shapes.
Tensor swiglu(const Tensor& gate, const Tensor& up);
void add_(Tensor& y, const Tensor& x);  // y += x (same numel)
void scale_(Tensor& y, float s);        // y *= s
// Rows of x [M, D]: x * (1 + scale[D]) + shift[D]  (adaLN modulation, broadcast over rows).
Tensor modulate(const Tensor& x, const float* shift, const float* scale);
// y[M, D] += gate[D] ⊙ x[M, D]  (gated residual, gate broadcast over rows; gate may be null = 1).
void gated_add_(Tensor& y, const Tensor& x, const float* gate);
// Softmax over the last dim, in place.
void softmax_(Tensor& x);

// ---- layout helpers ----
// Columns [begin, end) of x [M, N] as a new contiguous [M, end-begin] tensor.
Tensor cols(const Tensor& x, int64_t begin, int64_t end);
// Concatenate along the last dim (rows must agree) / along dim 0.
Tensor concat_cols(const std::vector<Tensor>& parts);
Tensor concat_rows(const std::vector<Tensor>& parts);
// rows of table (any float dtype) as f32 [ids.size(), D].
Tensor embedding(const Tensor& table, const std::vector<int64_t>& ids);
// Mean over rows: x [M, D] -> [1, D].
Tensor mean_rows(const Tensor& x);

// ---- RoPE ----
enum class RopeLayout {
  HalfSplit,    // pairs (d, d + D/2): HF rotate_half, flash-attn non-interleaved (LLM, ViT)
  Interleaved,  // pairs (2k, 2k+1): FLUX / Yak DiT
};
// x [L, H, D]; cos/sin [L, D/2] (f32). Rotates the first 2*(D/2) dims of every head in place.
void rope_(Tensor& x, int heads, const Tensor& cos, const Tensor& sin, RopeLayout layout);

// ---- attention ----
// softmax(q kᵀ · scale) v per head. q [Lq, Hq·D], k/v [Lk, Hk·D] with Hq % Hk == 0 (GQA: query
// head h reads kv head h / (Hq/Hk)). With causal, query i may see keys j <= i + (Lk - Lq); a
// query that sees no key gets zeros. Tiled over (head, query tile) with an exact fp32 softmax per
// [tile, Lk] block: memory is O((Lq + Lk)·H·D + threads·tile·Lk), never Lq×Lk. In BF16 mode q, k,
// v and the probabilities enter the two products as bf16 (fp32 accumulation), as the reference's
// flash attention does; calls with Lq <= 8 (decode) run in fp32 in both modes.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int q_heads, int kv_heads,
                 float scale, bool causal);

// ---- convolution (batch 1, x [C, H, W]) ----
struct Conv2dParams {
  int stride = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p);
Tensor upsample_nearest2x(const Tensor& x);  // [C, H, W] -> [C, 2H, 2W]

// Read one element of a weight tensor of any float dtype as f32 (setup code, not hot loops).
float weight_at(const Tensor& w, int64_t i);
// Copy of a (small) weight tensor as f32, e.g. norm weights or biases.
Tensor weight_f32(const Tensor& w);

}  // namespace ovis::ops
