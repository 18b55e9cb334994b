#include "llm/kv_cache.hpp"

#include "core/error.hpp"

namespace ovis {

KvCache::KvCache(const ops::Context& ctx, int layers, int64_t max_tokens, int64_t kv_width)
    : ctx_(ctx), capacity_(max_tokens), kv_width_(kv_width) {
  OVIS_ASSERT(layers > 0 && max_tokens > 0 && kv_width > 0);
  k_.reserve(layers);
  v_.reserve(layers);
  for (int i = 0; i < layers; ++i) {
    k_.push_back(ops::empty(ctx, {max_tokens, kv_width}, ctx.act_dtype()));
    v_.push_back(ops::empty(ctx, {max_tokens, kv_width}, ctx.act_dtype()));
  }
}

void KvCache::write(int layer, const Tensor& k, const Tensor& v) {
  OVIS_ASSERT(layer >= 0 && layer < layers());
  OVIS_ASSERT(k.numel() == v.numel() && k.numel() % kv_width_ == 0);
  const int64_t n = k.numel() / kv_width_;
  if (size_ + n > capacity_)
    fail("KV cache full: ", size_, " + ", n, " tokens exceed its capacity of ", capacity_);
  Tensor k_rows = k_[layer].slice_rows(size_, size_ + n);
  Tensor v_rows = v_[layer].slice_rows(size_, size_ + n);
  ops::copy_(ctx_, k_rows, k);
  ops::copy_(ctx_, v_rows, v);
}

void KvCache::advance(int64_t n) {
  OVIS_ASSERT(n >= 0 && size_ + n <= capacity_);
  size_ += n;
}

void KvCache::truncate(int64_t n) {
  OVIS_ASSERT(n >= 0 && n <= size_);
  size_ = n;
}

}  // namespace ovis
