// Binds checkpoint tensors to model structs, validating name, shape and dtype up front.
// Models call get(name, shape); after all models are bound, check_no_extra() reports tensors
// the checkpoint holds under the bound prefixes that no model asked for.
#pragma once
#include <set>
#include <string>

#include "core/tensor.hpp"
#include "io/safetensors.hpp"

namespace ovis {

class WeightBinder {
 public:
  explicit WeightBinder(const TensorStore& store) : store_(store) {}

  // The tensor `name` with exactly `shape`, stored as F32, BF16 or F16 (zero-copy view).
  // Errors: "<shard file>: tensor '<name>' has shape [..], expected [..]" / missing / dtype.
  Tensor get(const std::string& name, const Shape& shape);
  bool has(const std::string& name) const { return store_.has(name); }
  // Marks a tensor as known-but-unused (e.g. post_trunk_norm, spec §4.4).
  void ignore(const std::string& name) { used_.insert(name); }
  // Throws if any tensor whose name starts with one of `prefixes` was never bound or ignored.
  void check_no_extra(const std::vector<std::string>& prefixes) const;
  const TensorStore& store() const { return store_; }

 private:
  const TensorStore& store_;
  std::set<std::string> used_;
};

}  // namespace ovis
