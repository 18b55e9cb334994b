// Device helpers shared by the kernels: element access by dtype (all arithmetic is fp32, values
// are converted on load and rounded to nearest even on store), launch sizes and reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/dtype.hpp"
#include "core/tensor.hpp"

namespace ovis::ops::cuda {

// A float tensor as the kernels see it: address and element type.
struct Elems {
  const void* p = nullptr;
  DType t = DType::F32;
};
struct MutElems {
  void* p = nullptr;
  DType t = DType::F32;
};
inline Elems elems(const Tensor& x) {
  return {x.device_ptr(), x.dtype()};
}
inline MutElems mut_elems(Tensor& x) {
  return {x.device_ptr(), x.dtype()};
}

__device__ __forceinline__ float load(Elems e, int64_t i) {
  switch (e.t) {
    case DType::BF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(e.p)[i]);
    case DType::F16:
      return __half2float(static_cast<const __half*>(e.p)[i]);
    default:
      return static_cast<const float*>(e.p)[i];
  }
}
__device__ __forceinline__ float load(MutElems e, int64_t i) {
  return load(Elems{e.p, e.t}, i);
}
__device__ __forceinline__ void store(MutElems e, int64_t i, float v) {
  switch (e.t) {
    case DType::BF16:
      static_cast<__nv_bfloat16*>(e.p)[i] = __float2bfloat16_rn(v);
      break;
    case DType::F16:
      static_cast<__half*>(e.p)[i] = __float2half_rn(v);
      break;
    default:
      static_cast<float*>(e.p)[i] = v;
  }
}
__device__ __forceinline__ float round_to_bf16(float v) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n items (bounded: the loops cover the rest).
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

#define OVIS_GRID_STRIDE(i, n)                                              \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(blockDim.x) * gridDim.x)

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The end of a warp-per-output-row GEMV: lane sums of M rows reduced over the warp, and lane 0
// stores y[m, n] = sum + bias[n] (bias may be null).
template <int M>
__device__ __forceinline__ void store_warp_rows(const float (&acc)[M], int lane, int64_t n,
                                                int64_t N, const float* bias, MutElems y) {
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float s = warp_sum(acc[m]);
    if (lane == 0) store(y, int64_t(m) * N + n, s + (bias ? bias[n] : 0.0f));
  }
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
// `scratch` holds 32 values; the call synchronises the block.
template <class T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = lane < warps ? scratch[lane] : T(0);
  return warp_sum(r);
}
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(r);
}

// A token position held in an F32 [1] tensor, as an integer.
__device__ __forceinline__ int64_t position(const float* pos) {
  return int64_t(pos[0]);
}

}  // namespace ovis::ops::cuda
