// Error checks for CUDA runtime, cuBLAS and cuDNN calls: a failure becomes an ovis::Error naming
// the call and the library's message.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.hpp"

namespace ovis::ops::cuda {

inline void check(cudaError_t e, const char* call, const char* file, int line) {
  if (e != cudaSuccess)
    fail("CUDA error: ", cudaGetErrorString(e), " in ", call, " (", file, ":", line, ")");
}
inline void check(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    fail("cuBLAS error: ", cublasGetStatusString(s), " in ", call, " (", file, ":", line, ")");
}
inline void check(cudnnStatus_t s, const char* call, const char* file, int line) {
  if (s != CUDNN_STATUS_SUCCESS)
    fail("cuDNN error: ", cudnnGetErrorString(s), " in ", call, " (", file, ":", line, ")");
}

}  // namespace ovis::ops::cuda

#define OVIS_CU(call) ::ovis::ops::cuda::check((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, not at the next sync.
#define OVIS_CU_LAUNCHED(name) \
  ::ovis::ops::cuda::check(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)
