#include "core/tensor.hpp"

#include <cstdlib>
#include <cstring>

#include "core/error.hpp"

namespace ovis {

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    if (d < 0) fail("invalid tensor shape ", shape_str(shape));
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  size_t bytes = (t.nbytes() + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) fail("out of memory allocating ", bytes, " bytes for tensor ", shape_str(shape));
  t.storage_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::F32);
  float* p = t.f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

Tensor Tensor::view(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner) {
  Tensor t;
  t.data_ = data;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.storage_ = std::move(owner);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  if (int64_t(v.size()) != shape_numel(shape))
    fail("from_vector: ", v.size(), " values for shape ", shape_str(shape));
  Tensor t = empty(shape);
  std::memcpy(t.data_, v.data(), v.size() * 4);
  return t;
}

float* Tensor::f32() const {
  OVIS_ASSERT(dtype_ == DType::F32);
  return static_cast<float*>(data_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int neg = -1;
  int64_t known = 1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      OVIS_ASSERT(neg < 0);
      neg = int(i);
    } else {
      known *= s[i];
    }
  }
  if (neg >= 0) s[neg] = known ? numel() / known : 0;
  if (shape_numel(s) != numel())
    fail("internal error: cannot reshape ", shape_str(shape_), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  OVIS_ASSERT(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0]);
  Tensor t = *this;
  int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  t.shape_[0] = end - begin;
  t.data_ = static_cast<char*>(data_) + size_t(begin * row) * dtype_size(dtype_);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_);
  std::memcpy(t.data_, data_, nbytes());
  return t;
}

Tensor Tensor::to_dtype(DType target) const {
  if (target == dtype_) return clone();
  Tensor t = empty(shape_, target);
  int64_t n = numel();
  if (target == DType::F32) {
    float* o = t.f32();
    if (dtype_ == DType::BF16) {
      const uint16_t* s = data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = bf16_to_f32(s[i]);
    } else if (dtype_ == DType::F16) {
      const uint16_t* s = data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = f16_to_f32(s[i]);
    } else if (dtype_ == DType::I64) {
      const int64_t* s = data<int64_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = float(s[i]);
    } else if (dtype_ == DType::I32) {
      const int32_t* s = data<int32_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = float(s[i]);
    } else if (dtype_ == DType::U8) {
      const uint8_t* s = data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) o[i] = float(s[i]);
    }
    return t;
  }
  if (dtype_ == DType::F32 && target == DType::BF16) {
    const float* s = f32();
    uint16_t* o = t.data<uint16_t>();
    for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(s[i]);
    return t;
  }
  if (dtype_ == DType::F32 && target == DType::F16) {
    const float* s = f32();
    uint16_t* o = t.data<uint16_t>();
    for (int64_t i = 0; i < n; ++i) o[i] = f32_to_f16(s[i]);
    return t;
  }
  return to_f32().to_dtype(target);
}

Tensor Tensor::to_f32() const {
  return dtype_ == DType::F32 ? clone() : to_dtype(DType::F32);
}

std::vector<float> Tensor::to_vector() const {
  Tensor f = dtype_ == DType::F32 ? *this : to_f32();
  return std::vector<float>(f.f32(), f.f32() + f.numel());
}

}  // namespace ovis
