// CPU products with block-quantized weights (Q8_0, Q4_K in ggml's layouts), raw-pointer entry
// points for the CPU backend. Activations are quantised per 32-element block on the fly (int8
// with an f32 scale, like llama.cpp's q8 activations) and multiplied with exact integer dot
// products; the float result is the sum of scaled block products. The kernels come in three
// levels chosen at run time: AVX-512 VNNI (panel GEMM for M > 4 and GEMV), AVX2 (GEMV, tiled
// over rows for GEMM) and portable scalar code.
#pragma once
#include <cstdint>

#include "core/dtype.hpp"

namespace ovis::ops::cpu::quant {

enum class Isa { Generic = 0, Avx2 = 1, Avx512Vnni = 2 };
const char* isa_name(Isa isa);
// What this CPU runs (OVIS_CPU_ISA=generic|avx2 lowers it, as for the other CPU kernels).
Isa cpu_isa();
Isa active_isa();
// Lowers (or restores, up to cpu_isa()) the level in use; returns the previous one. For tests.
Isa set_active_isa(Isa isa);

// y[M, N] = x[M, K] · Wᵀ (+ bias[N]); W is [N, K] with rows of K elements (K a multiple of the
// block) in the layout of `wtype` (Q8_0 or Q4_K).
void linear(DType wtype, const void* w, int64_t N, int64_t K, const float* x, int64_t M,
            const float* bias, float* y);
// y[M, N] = a[M, K] · B with B [K, N] stored as K quantized rows of N elements.
void matmul(DType btype, const void* b, int64_t K, int64_t N, const float* a, int64_t M, float* y);
// Rows `ids[i]` of a quantized [rows, D] table as f32 into out[i·D ...].
void dequantize_rows(DType wtype, const void* w, int64_t D, const int64_t* ids, int64_t n,
                     float* out);

}  // namespace ovis::ops::cpu::quant
