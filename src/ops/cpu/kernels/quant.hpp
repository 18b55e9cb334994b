// CPU products with block-quantized weights (Q8_0, Q4_K in ggml's layouts), raw-pointer entry
// points for the CPU backend. Activations are quantised per 32-element block on the fly (int8
// with an f32 scale, like llama.cpp's q8 activations) and multiplied with exact integer dot
// products; the float result is the sum of scaled block products. The integer kernels are part
// of the ISA variants (kernels.hpp, variant/quant.cpp) and follow active_isa(); this layer
// quantises the activations, splits the work over threads and picks GEMV or panel GEMM.
#pragma once
#include <cstdint>
#include <functional>

#include "core/dtype.hpp"

namespace ovis::ops::cpu::kernels {

// y[M, N] = x[M, K] · Wᵀ (+ bias[N]); W is [N, K] with rows of K elements (K a multiple of the
// block) in the layout of `wtype` (Q8_0 or Q4_K).
void quant_linear(DType wtype, const void* w, int64_t N, int64_t K, const float* x, int64_t M,
                  const float* bias, float* y);
// Weights in panels: a Linear weight rearranged once into the layout the kernels stream (16-row
// panels, variant/quant.cpp): Q4_K from the AVX2 level on, Q8_0 on the levels with VNNI. Bytes
// of w [N, K] in that form, or 0 where the active level keeps ggml's rows for the type. A packed
// weight belongs to the level that packed it.
int64_t quant_packed_bytes(DType wtype, int64_t N, int64_t K);
// w [N, K] (ggml rows) into dst (quant_packed_bytes(wtype, N, K) bytes, 64-byte aligned), in
// chunks of rows; rows_done(n) is called after each, when rows [0, n) are no longer read.
void quant_pack(DType wtype, const void* w, int64_t N, int64_t K, void* dst,
                const std::function<void(int64_t)>& rows_done = {});
// quant_linear on a packed weight: the same activation blocks and integer products (results
// differ from quant_linear's only in the order of the float sums), any M.
void quant_linear_packed(DType wtype, const void* wp, int64_t N, int64_t K, const float* x,
                         int64_t M, const float* bias, float* y);
// Decode-sized M (<= 4): up to 4 packed weights over the same x (q/k/v, gate/up), with x
// quantised once and every weight's panels in one parallel section. Each output equals
// quant_linear_packed's for its weight.
struct QuantPackedOut {
  DType wtype;        // Q8_0 or Q4_K
  const void* w;      // packed [n, K]
  const float* bias;  // [n] or null
  float* y;           // [M, n]
  int64_t n;
};
void quant_gemv_packed_group(const QuantPackedOut* outs, int count, int64_t K, const float* x,
                             int64_t M);
// y[M, N] = a[M, K] · B with B [K, N] stored as K quantized rows of N elements.
void quant_matmul(DType btype, const void* b, int64_t K, int64_t N, const float* a, int64_t M,
                  float* y);
// Rows `ids[i]` of a quantized [rows, D] table as f32 into out[i·D ...].
void dequantize_rows(DType wtype, const void* w, int64_t D, const int64_t* ids, int64_t n,
                     float* out);

}  // namespace ovis::ops::cpu::kernels
