// What the process holds per CUDA device, shared by every backend on that device: the one stream
// all work is queued on, the caching allocator over cudaMalloc, the library handles and their
// workspace. Because there is one stream per device, a block the allocator hands out again is
// only ever reused by work queued after its last use (stream order; no events needed).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <atomic>
#include <mutex>
#include <string>

#include "core/allocator.hpp"
#include "core/buffer.hpp"

namespace ovis::ops::cuda {

class DeviceState final : public DeviceMemory {
 public:
  explicit DeviceState(int index);
  DeviceState(const DeviceState&) = delete;

  int index() const { return index_; }
  const cudaDeviceProp& props() const { return props_; }
  cudaStream_t stream() const { return stream_; }
  // Makes this device current on the calling thread.
  void make_current() const;

  // DeviceMemory: the allocator new tensors come from (a graph's private pool while a capture
  // is under way), and copies ordered on the stream (synchronous when the host receives data).
  Allocator& allocator() override;
  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t n) override;
  void zero(void* dst, size_t n) override;

  // The device's own caching allocator (statistics, weights and activations).
  CachingAllocator& main_allocator() { return main_; }
  // While set, allocations come from `pool` (graph capture); nullptr restores the main one.
  void route_allocations(Allocator* pool) { route_.store(pool); }

  // Library handles on the stream, created on first use (cuDNN loads its engines lazily: a
  // process that never convolves does not pay for it).
  cublasLtHandle_t lt();
  cublasHandle_t blas();
  cudnnHandle_t dnn();
  // Workspace shared by cuBLASLt and cuBLAS calls (they run one after the other on the stream).
  void* gemm_workspace();
  static constexpr size_t kGemmWorkspaceBytes = size_t(32) << 20;

 private:
  int index_;
  cudaDeviceProp props_{};
  cudaStream_t stream_ = nullptr;
  CachingAllocator main_;
  std::atomic<Allocator*> route_{nullptr};
  std::mutex mu_;
  cublasLtHandle_t lt_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  void* workspace_ = nullptr;
};

// The state of device `index` (created on first use; lives until the process ends). Throws
// ovis::Error when there is no such device.
DeviceState& device_state(int index);

}  // namespace ovis::ops::cuda
