#include <cuda_runtime.h>

#include "core/error.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"

namespace ovis::ops::cuda {

CudaBackend::CudaBackend(int index, const BackendOptions& opts)
    : st_(device_state(index)),
      band_bytes_(std::max<size_t>(opts.conv_band_bytes, 1)),
      gemm_(make_gemm_plans(), destroy_gemm_plans),
      conv_(make_conv_plans(), destroy_conv_plans) {
  st_.make_current();
}

CudaBackend::~CudaBackend() = default;

std::string CudaBackend::name() const {
  const cudaDeviceProp& p = st_.props();
  return str(device().str(), " (", p.name, ", sm_", p.major, p.minor, ", ", p.multiProcessorCount,
             " SMs, ", double(p.totalGlobalMem) / double(1 << 30), " GiB)");
}

void CudaBackend::synchronize() {
  st_.make_current();
  OVIS_CU(cudaStreamSynchronize(st_.stream()));
}

Tensor CudaBackend::as_dtype(const Tensor& x, DType t) {
  if (x.dtype() == t) return x;
  Tensor y = empty(x.shape(), t);
  Context c{this, Precision::F32};
  copy_(c, y, x);
  return y;
}

DeviceInfo device_info(int index) {
  DeviceState& s = device_state(index);
  s.make_current();
  size_t free_b = 0, total_b = 0;
  OVIS_CU(cudaMemGetInfo(&free_b, &total_b));
  DeviceInfo d;
  d.device = Device::cuda(index);
  const cudaDeviceProp& p = s.props();
  d.name = str(p.name, " (sm_", p.major, p.minor, ", ", p.multiProcessorCount, " SMs)");
  d.total_memory = int64_t(total_b);
  d.free_memory = int64_t(free_b);
  return d;
}

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& opts) {
  OVIS_ASSERT(device.type == Device::Type::CUDA);
  const int n = device_count();
  if (n == 0)
    fail("--device ", device.str(), ": no CUDA device is available (", unavailable_reason(), ")");
  const cudaDeviceProp* props = nullptr;
  if (device.index < n) props = &device_state(device.index).props();
  if (!props) device_state(device.index);  // throws the "only N devices" error
  if (props->major < 8)
    fail("--device ", device.str(), ": ", props->name, " is sm_", props->major, props->minor,
         "; the CUDA backend needs compute capability 8.0 or newer (Ampere)");
  return std::make_unique<CudaBackend>(device.index, opts);
}

}  // namespace ovis::ops::cuda
