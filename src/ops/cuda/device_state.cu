#include <cuda_runtime.h>
#include <dlfcn.h>

#include <memory>
#include <vector>

#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend.hpp"
#include "ops/cuda/device_state.hpp"

namespace ovis::ops::cuda {

namespace {

struct Probe {
  int count = 0;
  std::string reason;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      r.count = 0;
      // Without a driver the runtime reports "driver version is insufficient": say what it is.
      void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
      r.reason =
          driver ? cudaGetErrorString(e) : "no NVIDIA driver is installed, libcuda.so.1 not found";
      if (driver) dlclose(driver);
      cudaGetLastError();  // not sticky: clear it
    } else if (r.count == 0) {
      r.reason = "no CUDA-capable device is detected";
    }
    return r;
  }();
  return p;
}

void* raw_alloc(int index, size_t bytes) {
  OVIS_CU(cudaSetDevice(index));
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) {
    cudaGetLastError();  // out of memory is reported by the caller; keep it out of later checks
    return nullptr;
  }
  return p;
}

void raw_free(int index, void* p) {
  OVIS_CU(cudaSetDevice(index));
  OVIS_CU(cudaFree(p));
}

}  // namespace

int device_count() {
  return probe().count;
}

std::string unavailable_reason() {
  return probe().reason;
}

// Never trims on free (cache limit "infinite", as PyTorch's allocator): a block is returned to
// the driver only when an allocation would otherwise fail. cudaFree synchronises the device, and
// no free may happen while a graph is being captured.
DeviceState::DeviceState(int index)
    : index_(index),
      main_(Device::cuda(index),
            {[index](size_t n) { return raw_alloc(index, n); },
             [index](void* p, size_t) { raw_free(index, p); }},
            SIZE_MAX) {
  OVIS_CU(cudaSetDevice(index));
  OVIS_CU(cudaGetDeviceProperties(&props_, index));
  OVIS_CU(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

void DeviceState::make_current() const {
  int cur = -1;
  OVIS_CU(cudaGetDevice(&cur));
  if (cur != index_) OVIS_CU(cudaSetDevice(index_));
}

Allocator& DeviceState::allocator() {
  Allocator* r = route_.load();
  return r ? *r : main_;
}

void DeviceState::copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t n) {
  if (n == 0) return;
  make_current();
  if (!dst_dev.is_host() && !src_dev.is_host() && dst_dev.index != src_dev.index) {
    // Between two GPUs: finish the source's queued work first, then copy synchronously.
    OVIS_CU(cudaStreamSynchronize(device_state(src_dev.index).stream()));
    OVIS_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_));
    OVIS_CU(cudaStreamSynchronize(stream_));
    return;
  }
  // Host memory here is pageable: an upload has consumed the host buffer when the call returns.
  OVIS_CU(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_));
  if (dst_dev.is_host()) OVIS_CU(cudaStreamSynchronize(stream_));
}

void DeviceState::zero(void* dst, size_t n) {
  if (n == 0) return;
  make_current();
  OVIS_CU(cudaMemsetAsync(dst, 0, n, stream_));
}

cublasLtHandle_t DeviceState::lt() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!lt_) {
    make_current();
    OVIS_CU(cublasLtCreate(&lt_));
  }
  return lt_;
}

cublasHandle_t DeviceState::blas() {
  void* ws = gemm_workspace();
  std::lock_guard<std::mutex> lock(mu_);
  if (!blas_) {
    make_current();
    OVIS_CU(cublasCreate(&blas_));
    OVIS_CU(cublasSetStream(blas_, stream_));
    // A user workspace keeps cuBLAS from allocating on its own (needed under graph capture).
    OVIS_CU(cublasSetWorkspace(blas_, ws, kGemmWorkspaceBytes));
    // Plain fp32 arithmetic: no TF32 for float GEMMs (F32 precision must match the goldens).
    OVIS_CU(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
  }
  return blas_;
}

cudnnHandle_t DeviceState::dnn() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!dnn_) {
    make_current();
    OVIS_CU(cudnnCreate(&dnn_));
    OVIS_CU(cudnnSetStream(dnn_, stream_));
  }
  return dnn_;
}

void* DeviceState::gemm_workspace() {
  std::lock_guard<std::mutex> lock(mu_);
  // Taken from the main allocator once and held: it counts towards the device's memory.
  if (!workspace_) workspace_ = main_.allocate(kGemmWorkspaceBytes);
  return workspace_;
}

DeviceState& device_state(int index) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<DeviceState>>* states =
      new std::vector<std::unique_ptr<DeviceState>>();  // never destroyed (outlives all tensors)
  std::lock_guard<std::mutex> lock(mu);
  const int n = device_count();
  if (index < 0 || index >= n) {
    if (n == 0)
      fail("--device cuda:", index, ": no CUDA device is available (", unavailable_reason(), ")");
    fail("--device cuda:", index, ": only ", n, " CUDA device", n == 1 ? "" : "s",
         " present (cuda:0", n > 1 ? " .. cuda:" + std::to_string(n - 1) : std::string(), ")");
  }
  if (states->empty()) {
    states->resize(size_t(n));
    register_device_memory(Device::Type::CUDA,
                           [](int i) -> DeviceMemory& { return device_state(i); });
  }
  auto& s = (*states)[size_t(index)];
  if (!s) s = std::make_unique<DeviceState>(index);
  return *s;
}

}  // namespace ovis::ops::cuda
