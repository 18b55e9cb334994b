// Weights as a backend keeps them, prepared once when a model is bound and freed with it: the
// stored tensor on the backend's device (a zero-copy view of the memory-mapped shard on the CPU,
// an upload on a GPU) plus whatever the backend derives from it (f32 bias copies, oneDNN
// reordered convolution weights). No backend caches anything keyed by a weight's address.
#pragma once
#include <memory>

#include "core/tensor.hpp"

namespace ovis::ops {

// Backend-private derived forms of a weight (owned by the weight).
struct PreparedWeight {
  virtual ~PreparedWeight() = default;
};

// nn.Linear: y = x · wᵀ + b.
struct LinearWeights {
  Tensor w;  // [out, in], stored dtype
  Tensor b;  // [out] f32, or undefined
  std::shared_ptr<PreparedWeight> prepared;
  int64_t out_features() const { return w.dim(0); }
  int64_t in_features() const { return w.dim(1); }
};

// nn.Conv2d: w [O, C, KH, KW] stored dtype, b [O] f32 or undefined.
struct ConvWeights {
  Tensor w;
  Tensor b;
  std::shared_ptr<PreparedWeight> prepared;
};

}  // namespace ovis::ops
