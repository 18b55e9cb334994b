// A test backend on the CPU that keeps activations in bf16 between ops in BF16 precision, as
// the CUDA backend does: every op widens its bf16 inputs, runs the CPU backend's op in fp32 and
// rounds the activations it produces (new tensors and in-place results) to bf16. Running the
// models on it checks, without a GPU, that the model code works with bf16 activations and how
// far the extra roundings move the results from the goldens (the bounds the CUDA golden tests
// use). F32 precision is the plain CPU backend.
#pragma once
#include <memory>

#include "ops/backend.hpp"

namespace ovis::test {

std::unique_ptr<ops::Backend> make_bf16_act_backend();

}  // namespace ovis::test
