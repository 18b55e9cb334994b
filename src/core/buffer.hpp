// A block of memory on one device: either allocated through that device's allocator (and given
// back to it when the last tensor viewing it dies), or foreign memory kept alive by an owner
// (a memory-mapped checkpoint shard, which is read-only).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "core/allocator.hpp"
#include "core/device.hpp"

namespace ovis {

class Buffer {
 public:
  // `bytes` fresh, uninitialised bytes from the device's allocator.
  static std::shared_ptr<Buffer> allocate(Device device, size_t bytes);
  // Foreign memory; `owner` keeps it alive (may be null for caller-managed memory).
  static std::shared_ptr<Buffer> wrap(Device device, void* data, size_t bytes,
                                      std::shared_ptr<const void> owner, bool writable);
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  Device device() const { return device_; }
  void* data() const { return data_; }
  size_t size() const { return size_; }
  bool writable() const { return writable_; }

 private:
  Buffer() = default;
  Device device_;
  void* data_ = nullptr;
  size_t size_ = 0;
  bool writable_ = true;
  Allocator* allocator_ = nullptr;  // null for wrapped memory
  std::shared_ptr<const void> owner_;
};

// What core needs of a device besides its allocator: copies between it and the host. The host is
// built in; a device backend (CUDA) registers its implementation when it is first used.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual Allocator& allocator() = 0;
  // n bytes; the kind of each pointer is given by its device. Synchronous with respect to the
  // host: data copied to the host is ready when the call returns.
  virtual void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t n) = 0;
  virtual void zero(void* dst, size_t n) = 0;
};

DeviceMemory& device_memory(Device d);
using DeviceMemoryFactory = std::function<DeviceMemory&(int index)>;
void register_device_memory(Device::Type type, DeviceMemoryFactory factory);

}  // namespace ovis
