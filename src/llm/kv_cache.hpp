// Preallocated key/value cache of the Qwen3 decoder (spec §6): per layer, K after q/k-norm and
// RoPE, and V, each [max_tokens, kv_heads * head_dim] in the context's activation dtype, on its
// device. Rows [0, size()) are filled. (float32 on the CPU: 224 KiB per token for Qwen3-1.7B.)
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "ops/ops.hpp"

namespace ovis {

class KvCache {
 public:
  KvCache() = default;
  KvCache(const ops::Context& ctx, int layers, int64_t max_tokens, int64_t kv_width);

  int layers() const { return int(k_.size()); }
  int64_t size() const { return size_; }          // tokens stored (= next position id)
  int64_t capacity() const { return capacity_; }  // max_tokens
  int64_t kv_width() const { return kv_width_; }

  // Writes k/v [n, kv_width] of `layer` at rows [size(), size() + n). Does not advance.
  void write(int layer, const Tensor& k, const Tensor& v);
  // Rows [0, end) of a layer's keys / values, sharing storage.
  Tensor keys(int layer, int64_t end) const { return k_[layer].slice_rows(0, end); }
  Tensor values(int layer, int64_t end) const { return v_[layer].slice_rows(0, end); }
  // A layer's whole storage [capacity, kv_width], for decode steps that find the position in a
  // device tensor (Qwen3::decode_step).
  Tensor& key_storage(int layer) { return k_[layer]; }
  Tensor& value_storage(int layer) { return v_[layer]; }

  // Commits n written rows (after every layer has written them).
  void advance(int64_t n);
  // Forgets everything after the first n tokens (n <= size()); the storage is kept.
  void truncate(int64_t n);
  void clear() { size_ = 0; }

 private:
  ops::Context ctx_;
  std::vector<Tensor> k_, v_;
  int64_t capacity_ = 0, kv_width_ = 0, size_ = 0;
};

}  // namespace ovis
