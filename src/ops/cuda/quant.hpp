// Block-quantized weights (Q8_0, Q4_K in ggml's layouts, core/quant_blocks.hpp) on the device:
// uploaded once as stored, decoded inside the kernels. Decode-sized products read the blocks
// directly (a GEMV that dequantizes in registers, fp32 products); larger ones dequantize blocks of
// rows into a bounded scratch in the activation dtype and run the cuBLASLt GEMM on it (gemm.cu).
// Embedding rows and the quantized right-hand matmul operand are dequantized the same way.
#pragma once
#include <cstdint>

#include "core/tensor.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

class CudaBackend;

// y[m, n] = Σ_k x[m, k]·deq(w)[n, k] (+ bias[n]) for M <= 4 rows of x; x is rounded to bf16 first
// when round_x (as the float GEMV does in BF16 precision).
void quant_gemv(CudaBackend& be, const Tensor& w, const Tensor& x, bool round_x, const float* bias,
                Tensor& y, int64_t M);
// out[i, :] = deq(w)[r0 + i, :] for i < rows (out: [rows, K] in its dtype, rounded to nearest
// even when 16-bit).
void dequantize_rows(CudaBackend& be, const Tensor& w, int64_t r0, int64_t rows, MutElems out);
// out[i, :] = deq(table)[ids[i], :] for i < n (ids on the device; I64 or I32).
void gather_dequantized_rows(CudaBackend& be, const Tensor& table, const void* ids, bool ids_i64,
                             int64_t n, MutElems out);

}  // namespace ovis::ops::cuda
