// The CPU backend the tests run on, and contexts over it at either precision.
#pragma once
#include "ops/backend.hpp"
#include "ops/ops.hpp"

namespace ovis::test {

ops::Backend& cpu_backend();
ops::Context cpu_ctx(ops::Precision p = ops::Precision::F32);
// Whether this CPU runs BF16 precision with native dot products (AVX512_BF16).
bool cpu_has_avx512_bf16();

}  // namespace ovis::test
