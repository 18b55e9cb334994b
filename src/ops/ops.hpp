// The op interface every model is written against (spec §9 numerics). Each op takes the Context
// it runs with; every tensor argument must live on the context's device (mixing devices is an
// error naming both), and the call is dispatched to that device's Backend (src/ops/backend.hpp;
// the CPU backend is src/ops/cpu/). Shapes are checked here, once for all backends.
// Tensors are contiguous and row-major. Activations have the context's act_dtype(); weights keep
// their stored dtype (F32, BF16 or F16, or for linear/matmul/embedding weights the
// block-quantized Q8_0 and Q4_K of a GGUF file). Products with quantized weights are backend
// numerics: the CPU quantises the activations per 32-value block on the fly and multiplies in
// int8 (like llama.cpp's CPU backend, both precisions); CUDA multiplies the activations as they
// are with the decoded weight (in-register GEMV for decode, dequantized row blocks + cuBLASLt
// above), so the two agree to the activation quantisation error, not to rounding.
//
// Precision policy: in Precision::F32 every product is computed in float32 from the (upcast)
// stored weights, matching the golden reference. In Precision::BF16 the GEMM and attention
// inputs are bf16 with fp32 accumulation, as the reference does on GPU; norms, softmax, RoPE and
// the reductions accumulate in fp32 (or wider) in both.
//
// Every op is checked against a naive double-precision reference in tests/test_ops.cpp, and each
// device backend against the CPU backend (tests/test_backend_ops.cpp); speed claims live in
// bench/.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "ops/context.hpp"
#include "ops/weights.hpp"

namespace ovis::ops {

// ---- tensors on the context's device ----
Tensor empty(const Context& c, const Shape& shape, DType dtype);
Tensor zeros(const Context& c, const Shape& shape, DType dtype);
Tensor fill(const Context& c, const Shape& shape, float value);  // act_dtype()
// A host tensor copied to the context's device (the same tensor on the CPU), in act_dtype()
// when it is a float tensor and `keep_dtype` is false.
Tensor upload(const Context& c, const Tensor& host, bool keep_dtype = false);

// ---- weights, prepared once at bind time (src/nn binds them by name) ----
// `sole_user`: the Linear is the only user of `w` (not a tied or reshaped table), so the backend
// may keep it in a repacked form only (the CPU's bf16 GEMM panels) and release the stored one.
LinearWeights prepare_linear(const Context& c, const Tensor& w, const Tensor* b,
                             bool sole_user = false);
ConvWeights prepare_conv(const Context& c, const Tensor& w, const Tensor* b);
Tensor prepare_f32(const Context& c, const Tensor& w);     // norm weights, biases, small vectors
Tensor prepare_stored(const Context& c, const Tensor& w);  // tables kept in their stored dtype

// ---- GEMM ----
// y[M, N] = x[M, K] · wᵀ (+ b).
Tensor linear(const Context& c, const Tensor& x, const LinearWeights& w);
// linear(c, x, *w[j]) for each j, as one op (decode: the q/k/v or gate/up GEMVs stream their
// weights in one parallel section). Results are identical to the separate calls.
std::vector<Tensor> linear_group(const Context& c, const Tensor& x,
                                 const std::vector<const LinearWeights*>& w);
// y[M, N] = a[M, K] · b[K, N]; b is a weight (any float dtype).
Tensor matmul(const Context& c, const Tensor& a, const Tensor& b);

// ---- normalisation (over the last dim unless stated) ----
// RMSNorm: x / sqrt(mean(x²) + eps) * w (w f32, may be null).
Tensor rms_norm(const Context& c, const Tensor& x, const Tensor* w, float eps);
// LayerNorm with optional affine weight/bias (f32).
Tensor layer_norm(const Context& c, const Tensor& x, const Tensor* w, const Tensor* b, float eps);
// GroupNorm over x [C, H, W] (batch 1) with affine weight/bias [C] (f32).
Tensor group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                  float eps);
// Per-group normalisation constants of x [C, H, W] as group_norm computes them (two passes in
// float64): [groups, 2] f32 rows (mean, 1/sqrt(var + eps)).
Tensor group_norm_stats(const Context& c, const Tensor& x, int groups, float eps);
// Adds the moments of the pixels [y0, y1) x [x0, x1) of x [C, H, W] to acc [groups, 3] F64 rows
// (Σx, Σx², count). For statistics over an image that is processed in tiles.
void group_moments_add_(const Context& c, Tensor& acc, const Tensor& x, int groups, int64_t y0,
                        int64_t y1, int64_t x0, int64_t x1);
// [groups, 2] f32 (mean, 1/sqrt(var + eps)) from accumulated moments.
Tensor group_norm_stats_from_moments(const Context& c, const Tensor& acc, float eps);

// ---- activations / elementwise (in place where suffixed _) ----
void silu_(const Context& c, Tensor& x);
void gelu_tanh_(const Context& c, Tensor& x);
Tensor swiglu(const Context& c, const Tensor& gate, const Tensor& up);  // silu(gate) * up
void add_(const Context& c, Tensor& y, const Tensor& x);                // y += x (same numel)
void scale_(const Context& c, Tensor& y, float s);                      // y *= s
void affine_(const Context& c, Tensor& y, float scale, float shift);    // y = y·scale + shift
void clamp_(const Context& c, Tensor& y, float lo, float hi);
// Rows of x [M, D]: x * (1 + scale) + shift, shift/scale [D] (adaLN modulation, broadcast over
// rows). shift/scale may be views (e.g. chunks of one modulation row).
Tensor modulate(const Context& c, const Tensor& x, const Tensor& shift, const Tensor& scale);
// y[M, D] += gate[D] ⊙ x[M, D] (gated residual; gate null = 1).
void gated_add_(const Context& c, Tensor& y, const Tensor& x, const Tensor* gate);
// Softmax over the last dim, in place (fp32 accumulation).
void softmax_(const Context& c, Tensor& x);
// Rounds float32 values to the nearest bf16 (round-half-even) in place; a no-op on bf16 tensors.
void round_bf16_(const Context& c, Tensor& x);
Tensor cast(const Context& c, const Tensor& x, DType dtype);

// ---- layout ----
// Columns [begin, end) of x [M, N] as a new contiguous [M, end-begin] tensor.
Tensor slice_cols(const Context& c, const Tensor& x, int64_t begin, int64_t end);
Tensor concat_cols(const Context& c, const std::vector<Tensor>& parts);
Tensor concat_rows(const Context& c, const std::vector<Tensor>& parts);
// Rows of table (any float dtype) for ids, in act_dtype(): [ids.size(), D].
Tensor embedding(const Context& c, const Tensor& table, const std::vector<int64_t>& ids);
// The same for ids held on the device (I32 [n], e.g. an argmax); an id outside the table gives a
// row of zeros (ids on the device cannot be checked here).
Tensor embedding(const Context& c, const Tensor& table, const Tensor& ids);
// Mean over rows: x [M, D] -> [1, D] (float64 accumulation).
Tensor mean_rows(const Context& c, const Tensor& x);
// Contiguous copy of x with its axes permuted: out.shape[i] = x.shape[perm[i]] (<= 6 dims).
Tensor permute(const Context& c, const Tensor& x, const std::vector<int>& perm);
// dst = src (same numel; converts between float dtypes). dst may be a view, e.g. cache rows.
void copy_(const Context& c, Tensor& dst, const Tensor& src);
// x [C, H, W] -> x[:, y0:y1, x0:x1] contiguous.
Tensor crop(const Context& c, const Tensor& x, int64_t y0, int64_t y1, int64_t x0, int64_t x1);
// out[:, y0 + i, x0 + j] += wy[i] · wx[j] · tile[:, i, j] (blending tiles into an image).
void accumulate_tile_(const Context& c, Tensor& out, const Tensor& tile, int64_t y0, int64_t x0,
                      const std::vector<float>& wy, const std::vector<float>& wx);
Tensor upsample_nearest2x(const Context& c, const Tensor& x);  // [C, H, W] -> [C, 2H, 2W]
// Position ids of an h x w token grid, row-major: [h·w, 3] f32 rows (t, row, col).
Tensor grid_positions(const Context& c, int64_t h, int64_t w, float t);

// Index of the largest value of each row of x [..., N] as I32 [rows]: ties go to the lowest
// index and NaN is never chosen unless the whole row is NaN (then 0), as TokenSampler::argmax.
Tensor argmax(const Context& c, const Tensor& x);
// Writes the host tensor `host` into the existing storage of `dst` (same dtype and numel), e.g.
// the input of a captured graph (ops/graph.hpp), whose address must not change.
void upload_(const Context& c, Tensor& dst, const Tensor& host);

// ---- RoPE ----
enum class RopeLayout {
  HalfSplit,    // pairs (d, d + D/2): HF rotate_half, flash-attn non-interleaved (LLM, ViT)
  Interleaved,  // pairs (2k, 2k+1): FLUX / Yak DiT
};
// Frequencies of the rotated pairs: pair p rotates by position[axis[p]] · omega[p].
struct RopeFreqs {
  std::vector<double> omega;
  std::vector<int> axis;
  bool f64_angles = false;  // angle and cos/sin in float64 (FLUX EmbedND), else float32 (HF)
  bool round_bf16 = false;  // cos/sin rounded to bf16 (the reference's bf16 LLM, spec §6, §9.1)
  int64_t pairs() const { return int64_t(omega.size()); }
};
struct RopeTable {
  Tensor cos, sin;  // [L, pairs] f32
  int64_t rows() const { return cos.dim(0); }
  RopeTable slice(int64_t begin, int64_t end) const {
    return {cos.slice_rows(begin, end), sin.slice_rows(begin, end)};
  }
};
// positions [L, n_axes] f32.
RopeTable rope_table(const Context& c, const Tensor& positions, const RopeFreqs& f);
// Positions start .. start+L-1 on one axis.
RopeTable rope_table(const Context& c, int64_t start, int64_t L, const RopeFreqs& f);
// x [L, heads·D]; rotates the first 2·pairs dims of every head in place.
void rope_(const Context& c, Tensor& x, int heads, const RopeTable& t, RopeLayout layout);

// ---- attention ----
// softmax(q kᵀ · scale) v per head. q [Lq, Hq·D], k/v [Lk, Hk·D] with Hq % Hk == 0 (GQA: query
// head h reads kv head h / (Hq/Hk)). With causal, query i may see keys j <= i + (Lk - Lq); a
// query that sees no key gets zeros. Memory is linear in Lq + Lk (tiled; never Lq×Lk). In BF16
// precision q, k, v and the probabilities enter the two products as bf16 (fp32 accumulation),
// as the reference's flash attention does.
Tensor attention(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v, int q_heads,
                 int kv_heads, float scale, bool causal);

// ---- decoding at a position held on the device ----
// `pos` is an F32 [1] tensor on the context's device holding a token position p (an exact
// integer). These ops read p on the device, so a captured graph replays them at whatever
// position the tensor holds at replay time (one decode step, recorded once).
// Rotary tables of positions p .. p+L-1 on one axis (= rope_table(c, p, L, f)).
RopeTable rope_table_at(const Context& c, const Tensor& pos, int64_t L, const RopeFreqs& f);
// dst rows [p, p + rows(src)) = src (float dtypes converted), e.g. one KV-cache layer; the
// caller guarantees that the rows exist.
void copy_rows_at_(const Context& c, Tensor& dst, const Tensor& src, const Tensor& pos);
// Causal attention of the queries q [Lq, Hq·D] at positions p .. p+Lq-1 over the rows
// [0, p + Lq) of the cache tensors k/v [capacity, Hk·D]
// (= attention(c, q, k[0 : p+Lq], v[0 : p+Lq], q_heads, kv_heads, scale, true)).
Tensor attention_at(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                    const Tensor& pos, int q_heads, int kv_heads, float scale);

// ---- convolution (batch 1, x [C, H, W]) ----
struct Conv2dParams {
  int stride = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};
// What is applied to x before the convolution, fused so that backends can bound temporaries
// (the CPU backend convolves in row bands and applies the prologue per band).
struct ConvPrologue {
  enum class Kind { None, GroupNormSilu, Upsample2x };
  Kind kind = Kind::None;
  const Tensor* stats = nullptr;  // GroupNormSilu: [groups, 2] (mean, inv_std), group_norm_stats
  const Tensor* norm_w = nullptr;
  const Tensor* norm_b = nullptr;
};
Tensor conv2d(const Context& c, const Tensor& x, const ConvWeights& w, const Conv2dParams& p,
              const ConvPrologue& prologue = {});

// ---- diffusion ----
// [1, dim]: (cos(t·f_i), sin(t·f_i)), f_i = exp(-ln(max_period) · i / (dim/2)) in float32
// (timestep_embedding of the reference, t already scaled).
Tensor timestep_embedding(const Context& c, float t, int dim, float max_period);
// Classifier-free guidance and the Euler step in one pass over the latents (spec §7.5):
//   T2I  (v = {v_cond, v_uncond}):            g = v_u + s0·(v_c − v_u)
//   Edit (v = {v_cond, v_no_both, v_no_txt}): g = v_nb + s1·(v_nt − v_nb) + s0·(v_c − v_nt)
//   img += dt·g
// In BF16 precision every intermediate is rounded to bf16 as the reference's bf16 tensors are;
// each op is rounded on its own (no fused multiply-add). `guided` (optional) receives g.
enum class Guidance { T2I, Edit };
void guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v, Guidance g,
                        float s0, float s1, float dt, Tensor* guided = nullptr);
// spec §7.11: x [C, H, W] -> U8 [H, W, C] = trunc(127.5·(clamp(x, −1, 1) + 1)).
Tensor image_to_u8(const Context& c, const Tensor& x);
// The noise of torch.randn(shape, dtype=torch.bfloat16, device="cuda",
// generator=torch.Generator("cuda").manual_seed(seed)) (spec §9.6) as F32 values, by
// PyTorch's CUDA Philox scheme (ops/torch_randn.hpp). A CUDA backend runs the scheme on its
// GPU and is bit-exact there; elsewhere it is computed on the host (see torch_randn.hpp for the
// rare last-bit differences of the GPU's sine/cosine approximation).
Tensor randn_torch_cuda(const Context& c, const Shape& shape, uint64_t seed);

}  // namespace ovis::ops
