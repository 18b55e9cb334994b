// Binds checkpoint tensors to model structs, validating name, shape and dtype up front.
// Models call get(name, shape); after all models are bound, check_no_extra() reports tensors
// the checkpoint holds under the bound prefixes that no model asked for.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"
#include "io/safetensors.hpp"

namespace ovis {

class WeightBinder {
 public:
  explicit WeightBinder(const TensorStore& store) : store_(&store) {}
  // A binder with no checkpoint behind it: get() returns deterministic random BF16 tensors of
  // the requested shape (benchmarks build the real-size models this way, without a file).
  static WeightBinder synthetic(uint64_t seed);
  // A binder that hands out read-only views of zero pages (no memory is committed) and records
  // the name and shape of every tensor asked for, in order: the tensor list of an architecture.
  static WeightBinder recording();
  // Synthetic binders: the dtype each matrix from get_matrix() is converted to (quantised in
  // memory, for benchmarks); unset = BF16.
  void set_matrix_type(std::function<DType(const std::string&, const Shape&)> fn) {
    matrix_type_ = std::move(fn);
  }
  const std::vector<std::pair<std::string, Shape>>& recorded() const { return recorded_; }

  // The tensor `name` with exactly `shape`, stored as F32, BF16 or F16 (zero-copy view).
  // Errors: "<shard file>: tensor '<name>' has shape [..], expected [..]" / missing / dtype.
  Tensor get(const std::string& name, const Shape& shape);
  // As get(), for a matrix the model multiplies by (a Linear weight, an embedding table): also
  // accepts the block-quantized Q8_0 and Q4_K of a GGUF file.
  Tensor get_matrix(const std::string& name, const Shape& shape);
  bool has(const std::string& name) const { return store_ ? store_->has(name) : false; }
  // Marks a tensor as known-but-unused (e.g. post_trunk_norm, spec §4.4).
  void ignore(const std::string& name) { used_.insert(name); }
  // Throws if any tensor whose name starts with one of `prefixes` was never bound or ignored.
  void check_no_extra(const std::vector<std::string>& prefixes) const;
  bool is_synthetic() const { return store_ == nullptr; }
  // Total bytes of weights handed out so far.
  size_t bound_bytes() const { return bound_bytes_; }

 private:
  WeightBinder() = default;
  Tensor get_checked(const std::string& name, const Shape& shape, bool allow_quantized);
  const TensorStore* store_ = nullptr;
  uint64_t seed_ = 0;
  bool recording_ = false;
  std::function<DType(const std::string&, const Shape&)> matrix_type_;
  std::vector<std::pair<std::string, Shape>> recorded_;
  size_t bound_bytes_ = 0;
  std::set<std::string> used_;
};

}  // namespace ovis
