#include "core/tensor.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/quant_blocks.hpp"

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

namespace {

void check_blocks(const Shape& shape, DType dtype) {
  const int64_t b = dtype_block_elems(dtype);
  if (b > 1 && (shape.empty() || shape.back() % b != 0))
    fail("internal error: a ", dtype_name(dtype), " tensor needs rows of whole ", b,
         "-element blocks, got shape ", shape_str(shape));
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device dev) {
  for (int64_t d : shape)
    if (d < 0) fail("invalid tensor shape ", shape_str(shape));
  check_blocks(shape, dtype);
  Tensor t;
  t.shape_ = shape;
  t.dtype_ = dtype;
  t.buffer_ = Buffer::allocate(dev, std::max<size_t>(t.nbytes(), 1));
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device dev) {
  Tensor t = empty(shape, dtype, dev);
  device_memory(dev).zero(t.device_ptr(), t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::F32);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& shape) {
  if (int64_t(v.size()) != shape_numel(shape))
    fail("from_vector: ", v.size(), " values for shape ", shape_str(shape));
  Tensor t = empty(shape);
  if (!v.empty()) std::memcpy(t.mutable_raw(), v.data(), v.size() * 4);
  return t;
}

Tensor Tensor::view(std::shared_ptr<Buffer> buffer, size_t offset, const Shape& shape,
                    DType dtype) {
  OVIS_ASSERT(buffer != nullptr);
  check_blocks(shape, dtype);
  Tensor t;
  t.buffer_ = std::move(buffer);
  t.offset_ = offset;
  t.shape_ = shape;
  t.dtype_ = dtype;
  OVIS_ASSERT(offset + t.nbytes() <= t.buffer_->size());
  return t;
}

Tensor Tensor::host_view(const void* data, const Shape& shape, DType dtype,
                         std::shared_ptr<const void> owner) {
  check_blocks(shape, dtype);
  const size_t bytes = dtype_bytes(dtype, shape_numel(shape));
  return view(Buffer::wrap(Device::cpu(), const_cast<void*>(data), bytes, std::move(owner),
                           /*writable=*/false),
              0, shape, dtype);
}

Tensor Tensor::zero_view(const Shape& shape, DType dtype) {
  check_blocks(shape, dtype);
  const size_t bytes = std::max<size_t>(dtype_bytes(dtype, shape_numel(shape)), 1);
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("cannot map ", bytes, " bytes of zero pages: ", std::strerror(errno));
  std::shared_ptr<void> owner(p, [bytes](void* q) { munmap(q, bytes); });
  return host_view(p, shape, dtype, owner);
}

void Tensor::require_host(const char* what) const {
  if (!buffer_) fail("internal error: ", what, " of an undefined tensor");
  if (!buffer_->device().is_host())
    fail("internal error: ", what, " of a tensor on ", buffer_->device().str(),
         " from the host (copy it with .to(Device::cpu()) at a sync point)");
}

const void* Tensor::raw() const {
  require_host("host read");
  return device_ptr();
}

void* Tensor::mutable_raw() {
  require_host("host write");
  if (!buffer_->writable())
    fail("internal error: write into a read-only tensor ", shape_str(shape_),
         " (a weight view of a memory-mapped checkpoint)");
  return device_ptr();
}

const float* Tensor::f32() const {
  OVIS_ASSERT(dtype_ == DType::F32);
  return static_cast<const float*>(raw());
}

float* Tensor::mutable_f32() {
  OVIS_ASSERT(dtype_ == DType::F32);
  return static_cast<float*>(mutable_raw());
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
  const int64_t row = shape_[0] ? numel() / shape_[0] : 0;
  t.shape_[0] = end - begin;
  t.offset_ += dtype_bytes(dtype_, begin * row);
  return t;
}

Tensor Tensor::clone() const {
  Tensor t = empty(shape_, dtype_, device());
  device_memory(device()).copy(t.device_ptr(), device(), device_ptr(), device(), nbytes());
  return t;
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor t = empty(shape_, dtype_, dev);
  // The non-host side of the copy owns the transfer.
  DeviceMemory& m = device_memory(dev.is_host() ? device() : dev);
  m.copy(t.device_ptr(), dev, device_ptr(), device(), nbytes());
  return t;
}

namespace {
// o[i] = f(src[i]) for i < n: the pointers are taken once, not per element through the checked
// accessors, so the loop is a plain (vectorisable) one.
template <class S, class D, class F>
void convert_elements(const S* src, int64_t n, D* o, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(src[i]);
}
}  // namespace

Tensor Tensor::to_dtype(DType target) const {
  require_host("to_dtype");
  if (target == dtype_) return clone();
  Tensor t = empty(shape_, target);
  const int64_t n = numel();
  if (target == DType::F32) {
    float* o = t.mutable_f32();
    switch (dtype_) {
      case DType::BF16:
        convert_elements(data<uint16_t>(), n, o, bf16_to_f32);
        break;
      case DType::F16:
        convert_elements(data<uint16_t>(), n, o, f16_to_f32);
        break;
      case DType::I64:
        convert_elements(data<int64_t>(), n, o, [](int64_t v) { return float(v); });
        break;
      case DType::I32:
        convert_elements(data<int32_t>(), n, o, [](int32_t v) { return float(v); });
        break;
      case DType::U8:
        convert_elements(data<uint8_t>(), n, o, [](uint8_t v) { return float(v); });
        break;
      case DType::F64:
        convert_elements(data<double>(), n, o, [](double v) { return float(v); });
        break;
      case DType::Q8_0:
      case DType::Q4_K: {
        const int64_t K = shape_.back(), rows = K ? n / K : 0;
        const size_t row_bytes = dtype_bytes(dtype_, K);
        const char* src = static_cast<const char*>(raw());
        for (int64_t r = 0; r < rows; ++r) {
          if (dtype_ == DType::Q8_0)
            dequantize_row_q8_0(reinterpret_cast<const BlockQ8_0*>(src + r * row_bytes), o + r * K,
                                K);
          else
            dequantize_row_q4_k(reinterpret_cast<const BlockQ4_K*>(src + r * row_bytes), o + r * K,
                                K);
        }
        break;
      }
      case DType::F32:
        break;
    }
    return t;
  }
  if (dtype_ == DType::F32 && dtype_is_quantized(target)) {
    const int64_t K = shape_.empty() ? 1 : shape_.back(), rows = K ? n / K : 0;
    const size_t row_bytes = dtype_bytes(target, K);
    char* dst = static_cast<char*>(t.mutable_raw());
    const float* src = f32();
#pragma omp parallel for schedule(dynamic, 16) if (n > (1 << 16))
    for (int64_t r = 0; r < rows; ++r) {
      if (target == DType::Q8_0)
        quantize_row_q8_0(src + r * K, reinterpret_cast<BlockQ8_0*>(dst + r * row_bytes), K);
      else
        quantize_row_q4_k(src + r * K, reinterpret_cast<BlockQ4_K*>(dst + r * row_bytes), K);
    }
    return t;
  }
  if (dtype_ == DType::F32 && (target == DType::BF16 || target == DType::F16)) {
    uint16_t* o = t.mutable_data<uint16_t>();
    if (target == DType::BF16)
      convert_elements(f32(), n, o, f32_to_bf16);
    else
      convert_elements(f32(), n, o, f32_to_f16);
    return t;
  }
  return to_f32().to_dtype(target);
}

Tensor Tensor::to_f32() const {
  return dtype_ == DType::F32 ? clone() : to_dtype(DType::F32);
}

std::vector<float> Tensor::to_vector() const {
  const Tensor h = to(Device::cpu());
  const Tensor f = h.dtype() == DType::F32 ? h : h.to_f32();
  return std::vector<float>(f.f32(), f.f32() + f.numel());
}

}  // namespace ovis
