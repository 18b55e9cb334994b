#include "llm/kv_cache.hpp"

#include <cstring>

#include "core/error.hpp"

namespace ovis {

KvCache::KvCache(int layers, int64_t max_tokens, int64_t kv_width)
    : capacity_(max_tokens), kv_width_(kv_width) {
  OVIS_ASSERT(layers > 0 && max_tokens > 0 && kv_width > 0);
  k_.reserve(layers);
  v_.reserve(layers);
  for (int i = 0; i < layers; ++i) {
    k_.push_back(Tensor::empty({max_tokens, kv_width}));
    v_.push_back(Tensor::empty({max_tokens, kv_width}));
  }
}

void KvCache::write(int layer, const Tensor& k, const Tensor& v) {
  OVIS_ASSERT(layer >= 0 && layer < layers());
  OVIS_ASSERT(k.dtype() == DType::F32 && v.dtype() == DType::F32);
  OVIS_ASSERT(k.numel() == v.numel() && k.numel() % kv_width_ == 0);
  const int64_t n = k.numel() / kv_width_;
  if (size_ + n > capacity_)
    fail("KV cache full: ", size_, " + ", n, " tokens exceed its capacity of ", capacity_);
  const size_t row_bytes = size_t(kv_width_) * sizeof(float);
  std::memcpy(k_[layer].f32() + size_ * kv_width_, k.f32(), size_t(n) * row_bytes);
  std::memcpy(v_[layer].f32() + size_ * kv_width_, v.f32(), size_t(n) * row_bytes);
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
