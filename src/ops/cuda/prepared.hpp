// The derived forms of a weight the CUDA backend keeps next to the stored one (weights.cu makes
// them at bind time; gemm.cu and conv.cu read them).
#pragma once
#include "ops/weights.hpp"

namespace ovis::ops::cuda {

struct PreparedCuda final : PreparedWeight {
  // BF16 precision: the weight in bf16 when it is stored in another dtype (undefined when the
  // stored tensor already is bf16), and the bias in bf16 for the cuBLASLt epilogue (a bf16
  // output takes a bf16 bias; the checkpoint's biases are bf16, so this is exact).
  Tensor w_bf16;
  Tensor b_bf16;
};

inline const PreparedCuda* prepared_of(const std::shared_ptr<PreparedWeight>& p) {
  return dynamic_cast<const PreparedCuda*>(p.get());
}

}  // namespace ovis::ops::cuda
