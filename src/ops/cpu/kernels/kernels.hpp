// Raw-pointer CPU compute kernels with run-time ISA dispatch (like llama.cpp's CPU variants).
//
// The sources under kernels/variant/ are compiled once per ISA level, each copy in its own
// namespace (kernels::generic, kernels::avx2, ...); dispatch.cpp picks the best copy the running
// CPU supports, so one binary is fast on any x86-64.
// OVIS_CPU_ISA=generic|avx2|avx512|avx512bf16|amx in the environment (read once, capped at what the
// CPU supports) forces a lower level, so every path can be tested on one machine.
//
// Numerics of the "bf16" kernels, on every level: activations are rounded to bf16 with
// round-to-nearest-even (bit-identical to ovis::f32_to_bf16, NaN stays NaN), weights are bf16,
// every product is exact and accumulated in fp32. With AVX512-BF16 that is vdpbf16ps; below it
// the same products are formed with f32 FMAs (only the summation order differs).
//
// Threads: every entry point runs on `threads` threads (<= 0: omp_get_max_threads()): OpenMP for
// the GEMM, the work pool of work_pool.hpp for the decode GEMVs. Work is split into chunks that
// threads claim dynamically, and every output element is computed the same way whatever the
// split: results are bit-identical for any thread count.
// Buffers: row-major with the given leading dimensions (in elements); outputs must not alias
// inputs. Weights are only read (they may be read-only mmapped views).
#pragma once
#include <cstdint>

namespace ovis::ops::cpu::kernels {

// Ordered: each level includes the ones before it.
enum class Isa : int {
  Generic = 0,  // x86-64-v2 (SSE4.2), plain C++
  Avx2,         // AVX2 + FMA + F16C
  Avx512,       // AVX-512 F/BW/VL/DQ
  Avx512Bf16,   // + AVX512-BF16 (vdpbf16ps) and AVX512-VNNI (vpdpbusd, quantized weights)
  Amx,          // + AMX-TILE/AMX-BF16 granted by the OS (no AMX GEMM here yet: uses Avx512Bf16)
};

const char* isa_name(Isa isa);
// Parses "generic", "avx2", "avx512", "avx512bf16", "amx"; false if unknown.
bool parse_isa(const char* name, Isa* out);
// The best level this CPU and OS support (AMX: tile data permission granted by Linux).
Isa cpu_isa();
// The level in use: cpu_isa(), capped by OVIS_CPU_ISA if set (an unknown value is an error).
Isa active_isa();
// Forces a level (capped at cpu_isa()) for tests and benchmarks; returns the previous one.
Isa set_active_isa(Isa isa);
// The variant the kernels below run for active_isa(), e.g. "avx512bf16" (for benchmark JSON).
const char* kernel_variant();

enum class WeightLayout : uint8_t {
  NK,  // w[N, K]: PyTorch Linear weight (ldw = row stride, >= K)
  KN,  // w[K, N]: a plain right-hand matrix (ldw = row stride, >= N)
};

// c[M,N] = bf16(a[M,K]) · w (+ bias[N]) with fp32 accumulation; w is bf16 in `layout`.
// a is f32 (rounded to bf16 while packing), bias f32 or null. Any M, N, K >= 0; for M <= 4
// and the NK layout this runs the bandwidth-bound GEMV below.
void gemm_bf16(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const uint16_t* w,
               int64_t ldw, WeightLayout layout, const float* bias, float* c, int64_t ldc,
               int threads);

// dst[i] = bf16(src[i]) for n values (round to nearest even, bit-identical to f32_to_bf16).
void convert_f32_to_bf16(int64_t n, const float* src, uint16_t* dst, int threads);

// Decode-sized products, weight w[N, K] contiguous (ldw = K), x[M, K] and y[M, N] contiguous;
// each weight row is streamed once for all M rows (efficient for M <= 4, correct for any M).
// bf16 numerics as gemm_bf16: x rounded to bf16, bf16 weights, fp32 accumulation.
void gemv_bf16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w,
               const float* bias, float* y, int threads);
// F32 numerics: f32 x times 16-bit weights (bf16, or f16 when w_f16) widened exactly to f32.
void gemv_w16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w, bool w_f16,
              const float* bias, float* y, int threads);

// Several decode GEMVs over one x (q/k/v, gate/up): y_j[M, n_j] = x · w_jᵀ (+ bias_j), each
// w_j [n_j, K] contiguous. Same numerics as one gemv_bf16 / gemv_w16 call per output (every
// y_j is bit-identical to it); one parallel section for all of them (work_pool.hpp).
constexpr int kMaxGroup = 4;
struct GemvOut {
  const uint16_t* w;
  const float* bias;  // [n] or null
  float* y;           // [M, n]
  int64_t n;
};
void gemv_group_bf16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                     int threads);
void gemv_group_w16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                    bool w_f16, int threads);

// ---- Prepacked bf16 weights ----
// A Linear weight w[N, K] (bf16, contiguous) rearranged once, at bind time, into the panel layout
// of the active level's GEMM microkernel, so that no GEMM repacks it and the decode GEMV streams
// it in the same order. A packed weight belongs to the level that packed it (packed_level());
// the caller must not use it after set_active_isa() changed the level.
// Bytes of the packed form, or 0 when the active level has no packed layout (it then keeps
// reading the stored weight).
int64_t packed_bf16_bytes(int64_t N, int64_t K);
// w[N, K] into dst (packed_bf16_bytes(N, K) bytes, 64-byte aligned).
void pack_bf16(int64_t N, int64_t K, const uint16_t* w, void* dst, int threads);
// gemm_bf16 with the NK layout on a packed weight: the same numerics, bit-identical results
// (M <= 4 runs the packed GEMV, whose results match gemv_bf16's to fp32 summation order).
// a [M, K], c [M, N] contiguous.
void gemm_bf16_packed(int64_t M, int64_t N, int64_t K, const float* a, const void* wp,
                      const float* bias, float* c, int threads);
// gemv_group_bf16 on packed weights (decode q/k/v, gate/up): y_j[M, n_j] = x · w_jᵀ (+ bias_j).
struct PackedOut {
  const void* w;      // packed [n, K]
  const float* bias;  // [n] or null
  float* y;           // [M, n]
  int64_t n;
};
void gemv_group_bf16_packed(int64_t M, int64_t K, const float* x, const PackedOut* outs, int count,
                            int threads);

// ---- Row math outside the GEMMs ----
// Single-threaded (callers split the rows), on the active level's vector width: AVX-512 and
// AVX2 evaluate e^x with one polynomial (relative error < 2 ulp), the generic level with libm.
// Results may therefore differ between levels by a few ulp; within one level they depend only
// on the inputs.

// o[i] = x[i] / (1 + e^(−y)) (· u[i] when u is not null), y = x[i] (SiLU) or, with gelu_tanh,
// y = 2·√(2/π)·(x[i] + 0.044715·x[i]³) (GELU-tanh, as 0.5·(1 + tanh(y/2)) = 1 / (1 + e^(−y))).
// o may alias x.
void x_sigmoid(bool gelu_tanh, const float* x, const float* u, float* o, int64_t n);
// r[i] = e^(r[i] − max r) / Σ e^(r − max r) in place, the sum accumulated in double.
void softmax_row(float* r, int64_t n);
// max_j<n s[j]·scale (−inf when n == 0).
float max_scaled(const float* s, int64_t n, float scale);
// s[j] = e^(s[j]·scale − mx) in place for j < n; returns their fp32 sum, taken before the values
// are rounded to bf16 (round_bf16: as the reference feeds P to the P·V product in bf16).
float exp_scaled(float* s, int64_t n, float scale, float mx, bool round_bf16);
// Decode attention against one cached key row k (row j of the cache): for every r < rows with
// j < end[r], s[r·ld] = Σ_x<d q[qoff[r] + x]·k[col[r] + x]; other rows are left as they are.
void key_scores(const float* q, const int64_t* qoff, const float* k, const int64_t* col,
                const int64_t* end, int64_t j, int64_t rows, int64_t d, float* s, int64_t ld);
// And with the value row v: acc[r·ld_acc + x] += s[r·ld]·v[col[r] + x] for the same rows.
void value_accumulate(const float* v, const int64_t* col, const int64_t* end, int64_t j,
                      int64_t rows, int64_t d, const float* s, int64_t ld, float* acc,
                      int64_t ld_acc);
// dst[i] = src[i] rounded to bf16 (nearest even, as ovis::round_bf16), kept in f32; may alias.
void round_bf16(const float* src, int64_t n, float* dst);
// n bf16 (or IEEE f16) values widened exactly to f32.
void widen_16(const uint16_t* src, bool f16, int64_t n, float* dst);

}  // namespace ovis::ops::cpu::kernels
