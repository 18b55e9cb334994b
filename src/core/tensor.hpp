// Tensor: a typed, contiguous, row-major view {buffer, byte offset, shape, dtype} over memory on
// one device. Copying a Tensor copies the view, not the data.
//
// Host accessors: f32() / data<T>() / raw() give const pointers and require the tensor to be on
// the host; mutable_f32() / mutable_data<T>() / mutable_raw() additionally require writable
// storage (weights viewing a read-only memory-mapped shard are not), and fail with a clear error
// otherwise. Outside src/ops and src/io they are used only at named sync points and in host-side
// input preparation (tests/test_source_rules.cpp enforces that).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.hpp"
#include "core/device.hpp"
#include "core/dtype.hpp"

namespace ovis {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // Fresh, uninitialised storage from the device's caching allocator (64-byte aligned).
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device dev = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device dev = Device::cpu());
  // Host tensors from values.
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const std::vector<float>& v, const Shape& shape);
  // A view of `buffer` starting `offset` bytes in.
  static Tensor view(std::shared_ptr<Buffer> buffer, size_t offset, const Shape& shape,
                     DType dtype);
  // A read-only view of foreign host memory kept alive by `owner` (e.g. a mapped file).
  static Tensor host_view(const void* data, const Shape& shape, DType dtype,
                          std::shared_ptr<const void> owner);
  // A read-only view of zero pages (an anonymous mapping: no memory is committed), for a shape
  // that must exist without its data (recorded shapes, a weight whose data a backend repacked).
  static Tensor zero_view(const Shape& shape, DType dtype);

  bool defined() const { return buffer_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return buffer_ ? buffer_->device() : Device::cpu(); }
  bool is_host() const { return device().is_host(); }
  bool writable() const { return buffer_ && buffer_->writable(); }
  const Shape& shape() const { return shape_; }
  int ndim() const { return int(shape_.size()); }
  int64_t dim(int i) const { return shape_[i < 0 ? i + ndim() : i]; }
  int64_t numel() const { return shape_numel(shape_); }
  // Block-quantized dtypes: the last dimension is a whole number of blocks.
  size_t nbytes() const { return dtype_bytes(dtype_, numel()); }
  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }
  size_t offset() const { return offset_; }

  // Device address of the first element (for backends; never dereferenced on the host unless
  // the tensor is on the host).
  void* device_ptr() const {
    return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr;
  }

  // Host accessors (see the header comment).
  const void* raw() const;
  void* mutable_raw();
  template <class T>
  const T* data() const {
    return static_cast<const T*>(raw());
  }
  template <class T>
  T* mutable_data() {
    return static_cast<T*>(mutable_raw());
  }
  const float* f32() const;  // requires F32
  float* mutable_f32();      // requires F32

  // Same storage, new shape (numel must match). One dimension may be -1.
  Tensor reshape(const Shape& shape) const;
  // Rows [begin, end) along dim 0, sharing storage.
  Tensor slice_rows(int64_t begin, int64_t end) const;
  // Deep copy on the same device (same dtype).
  Tensor clone() const;
  // Copy on another device (the same tensor when it is already there).
  Tensor to(Device dev) const;
  // Host-only conversions (setup, tests): F32 <-> BF16/F16/Q8_0/Q4_K (quantised per row, the
  // reference quantisers of core/quant_blocks.hpp), integers/F64 -> F32.
  Tensor to_f32() const;
  Tensor to_dtype(DType t) const;
  std::vector<float> to_vector() const;  // any device: copied to the host first

 private:
  void require_host(const char* what) const;

  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
  Shape shape_;
  DType dtype_ = DType::F32;
};

}  // namespace ovis
