// Tensor: a typed, contiguous, row-major view over storage that it may share (heap buffer or a
// memory-mapped shard). Copying a Tensor copies the view, not the data.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.hpp"

namespace ovis {

enum class Device : uint8_t { CPU };

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // Fresh, 64-byte aligned, uninitialised heap storage.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, float value);
  // A view over foreign memory; `owner` keeps it alive (may be null for caller-managed memory).
  static Tensor view(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);

  bool defined() const { return data_ != nullptr || (numel() == 0 && !shape_.empty()); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + ndim() : i]; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }

  void* raw() const { return data_; }
  template <class T>
  T* data() const {
    return static_cast<T*>(data_);
  }
  float* f32() const;  // asserts dtype F32

  // Same storage, new shape (numel must match). One dimension may be -1.
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) along dim 0, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Deep copy (same dtype).
  Tensor clone() const;
  // Deep copy converted to float32 (F32/BF16/F16 sources).
  Tensor to_f32() const;
  Tensor to_dtype(DType t) const;  // F32 <-> BF16/F16
  std::vector<float> to_vector() const;

 private:
  void* data_ = nullptr;
  Shape shape_;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  std::shared_ptr<void> storage_;
};

}  // namespace ovis
