// Greedy token selection on the device: argmax per row with TokenSampler::argmax's rule (the
// first maximum; NaN only when the whole row is NaN). The rule is a total order on (value,
// index), so the parallel reduction gives the sequential answer.
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

__device__ __forceinline__ bool better(float av, int ai, float bv, int bi) {
  const bool an = isnan(av), bn = isnan(bv);
  if (an || bn) return an && bn ? ai < bi : bn;
  return av > bv || (av == bv && ai < bi);
}

__global__ void argmax_kernel(Elems x, int64_t N, int32_t* out) {
  __shared__ float sv[kThreads];
  __shared__ int si[kThreads];
  const int64_t base = int64_t(blockIdx.x) * N;
  float bv = NAN;
  int bi = INT_MAX;
  for (int64_t i = threadIdx.x; i < N; i += blockDim.x) {
    const float v = load(x, base + i);
    if (better(v, int(i), bv, bi)) {
      bv = v;
      bi = int(i);
    }
  }
  sv[threadIdx.x] = bv;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s &&
        better(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x])) {
      sv[threadIdx.x] = sv[threadIdx.x + s];
      si[threadIdx.x] = si[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = si[0];
}

}  // namespace

Tensor CudaBackend::argmax(const Context&, const Tensor& x) {
  const int64_t N = x.dim(-1), M = x.numel() / N;
  Tensor out = empty({M}, DType::I32);
  if (M == 0) return out;
  OVIS_ASSERT(N < int64_t(INT_MAX) && M <= 65535 * 1024);
  argmax_kernel<<<unsigned(M), kThreads, 0, stream()>>>(elems(x), N,
                                                        static_cast<int32_t*>(out.device_ptr()));
  OVIS_CU_LAUNCHED("argmax");
  return out;
}

}  // namespace ovis::ops::cuda
