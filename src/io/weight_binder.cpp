#include "io/weight_binder.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ovis {

namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t hash_name(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Uniform values with the variance of N(0, 1/fan_in); 1-D norm weights are ~1.
Tensor synthetic_tensor(const std::string& name, const Shape& shape, uint64_t seed) {
  Tensor t = Tensor::empty(shape, DType::BF16);
  const int64_t n = t.numel();
  const bool is_norm = shape.size() == 1 && (name.find("norm") != std::string::npos ||
                                             name.find("scale") != std::string::npos);
  const int64_t fan_in = shape.size() >= 2 ? n / shape[0] : 1;
  const float amp =
      is_norm ? 0.05f : std::sqrt(3.0f / float(fan_in)) * (shape.size() == 1 ? 0.1f : 1.0f);
  const float base = is_norm ? 1.0f : 0.0f;
  uint16_t* p = t.mutable_data<uint16_t>();
  const uint64_t s0 = seed ^ hash_name(name);
  constexpr int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < (n + kChunk - 1) / kChunk; ++c) {
    uint64_t st = s0 + uint64_t(c) * 0x632BE59BD9B4E019ull;
    for (int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) {
      float u = float(splitmix64(st) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
      p[i] = f32_to_bf16(base + amp * u);
    }
  }
  return t;
}

}  // namespace

WeightBinder WeightBinder::recording() {
  WeightBinder b;
  b.recording_ = true;
  return b;
}

WeightBinder WeightBinder::synthetic(uint64_t seed) {
  WeightBinder b;
  b.seed_ = seed;
  return b;
}

Tensor WeightBinder::get(const std::string& name, const Shape& shape) {
  return get_checked(name, shape, false);
}

Tensor WeightBinder::get_matrix(const std::string& name, const Shape& shape) {
  return get_checked(name, shape, true);
}

Tensor WeightBinder::get_checked(const std::string& name, const Shape& shape,
                                 bool allow_quantized) {
  if (!store_ && recording_) {
    used_.insert(name);
    recorded_.emplace_back(name, shape);
    return Tensor::zero_view(shape, DType::BF16);
  }
  if (!store_) {
    used_.insert(name);
    Tensor t = synthetic_tensor(name, shape, seed_);
    if (allow_quantized && matrix_type_) {
      const DType target = matrix_type_(name, shape);
      if (target != t.dtype()) t = t.to_f32().to_dtype(target);
    }
    bound_bytes_ += t.nbytes();
    return t;
  }
  const TensorStore& store_ = *this->store_;
  if (!store_.has(name))
    fail(store_.origin(), ": missing tensor '", name, "' (config.json's architecture needs it)");
  const SafetensorsEntry& e = store_.entry(name);
  const bool quantized_ok = allow_quantized && dtype_is_quantized(e.dtype);
  if (e.dtype != DType::F32 && e.dtype != DType::BF16 && e.dtype != DType::F16 && !quantized_ok)
    fail(store_.file_of(name), ": tensor '", name, "' has dtype ", dtype_name(e.dtype),
         allow_quantized ? ", expected BF16, F16, F32, Q8_0 or Q4_K"
                         : ", expected BF16, F16 or F32 (this tensor cannot be quantized)");
  if (e.shape != shape)
    fail(store_.file_of(name), ": tensor '", name, "' has shape ", shape_str(e.shape),
         ", expected ", shape_str(shape), " from config.json");
  used_.insert(name);
  bound_bytes_ += store_.entry(name).end - store_.entry(name).begin;
  return store_.get(name);
}

void WeightBinder::check_no_extra(const std::vector<std::string>& prefixes) const {
  if (!store_) return;
  const TensorStore& store_ = *this->store_;
  for (const auto& n : store_.names()) {
    if (used_.count(n)) continue;
    for (const auto& p : prefixes)
      if (n.rfind(p, 0) == 0)
        fail(store_.file_of(n), ": unexpected tensor '", n,
             "' (not part of the Ovis-U1 architecture "
             "described by config.json)");
  }
}

}  // namespace ovis
