// The CUDA backend for the GPU tests, or why there is none. Without one (a build without the
// CUDA backend, or no GPU) every GPU test calls GTEST_SKIP, which CTest reports as skipped
// (SKIP_REGULAR_EXPRESSION in CMakeLists.txt), never as passed.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "ops/backend.hpp"
#include "ops/ops.hpp"

namespace ovis::test {

// The process-wide backend on cuda:0, or null.
ops::Backend* cuda_backend();
// Why cuda_backend() is null.
std::string cuda_skip_reason();
ops::Context cuda_ctx(ops::Precision p = ops::Precision::F32);
// A host f32 copy of a tensor on any device, in any float dtype.
Tensor host_f32(const Tensor& t);

}  // namespace ovis::test

#define OVIS_REQUIRE_CUDA()                                                   \
  do {                                                                        \
    if (!::ovis::test::cuda_backend())                                        \
      GTEST_SKIP() << "no CUDA device: " << ::ovis::test::cuda_skip_reason(); \
  } while (0)
