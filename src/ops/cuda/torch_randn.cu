// torch.randn on a CUDA generator, run the way ATen runs it (ops/torch_randn.hpp): the same
// launch shape for this GPU, cuRAND's own Philox state and Box–Muller (curand_kernel.h), then
// the cast to bf16. Bit-exact with PyTorch on the same GPU model.
#include <curand_kernel.h>

#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"
#include "ops/torch_randn.hpp"

namespace ovis::ops::cuda {

namespace {

constexpr int kBlock = 256;  // ATen's block_size_bound

__global__ void __launch_bounds__(kBlock)
    torch_randn_kernel(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  curandStatePhilox4_32_10_t state;
  curand_init(seed, idx, offset, &state);
  const int64_t rounded = ((n - 1) / (stride * 4) + 1) * stride * 4;
  for (int64_t li = idx; li < rounded; li += stride * 4) {
    const float4 r = curand_normal4(&state);
    const float v[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int64_t e = li + stride * j;
      // static_cast<bfloat16>(normal · 1 + 0)
      if (e < n) out[e] = __bfloat162float(__float2bfloat16_rn(v[j]));
    }
  }
}

}  // namespace

Tensor CudaBackend::randn_torch_cuda(const Context&, const Shape& shape, uint64_t seed) {
  Tensor out = empty(shape, DType::F32);
  const int64_t n = out.numel();
  if (n == 0) return out;
  const cudaDeviceProp& p = st_.props();
  const int64_t threads =
      torch_randn_threads(n, p.multiProcessorCount, p.maxThreadsPerMultiProcessor);
  torch_randn_kernel<<<unsigned(threads / kBlock), kBlock, 0, stream()>>>(
      static_cast<float*>(out.device_ptr()), n, seed, 0);
  OVIS_CU_LAUNCHED("randn_torch_cuda");
  return out;
}

}  // namespace ovis::ops::cuda
