#include "core/buffer.hpp"

#include <cstring>
#include <mutex>

#include "core/error.hpp"

namespace ovis {

namespace {

class HostMemory final : public DeviceMemory {
 public:
  Allocator& allocator() override { return host_allocator(); }
  void copy(void* dst, Device dst_dev, const void* src, Device src_dev, size_t n) override {
    OVIS_ASSERT(dst_dev.is_host() && src_dev.is_host());
    if (n) std::memmove(dst, src, n);
  }
  void zero(void* dst, size_t n) override {
    if (n) std::memset(dst, 0, n);
  }
};

std::mutex g_registry_mu;
DeviceMemoryFactory g_cuda_factory;

}  // namespace

DeviceMemory& device_memory(Device d) {
  if (d.is_host()) {
    static HostMemory host;
    return host;
  }
  DeviceMemoryFactory f;
  {
    std::lock_guard<std::mutex> lock(g_registry_mu);
    f = g_cuda_factory;
  }
  if (!f) fail("device ", d.str(), " is not available: this build has no CUDA backend");
  return f(d.index);
}

void register_device_memory(Device::Type type, DeviceMemoryFactory factory) {
  OVIS_ASSERT(type == Device::Type::CUDA);
  std::lock_guard<std::mutex> lock(g_registry_mu);
  g_cuda_factory = std::move(factory);
}

std::shared_ptr<Buffer> Buffer::allocate(Device device, size_t bytes) {
  Allocator& a = device_memory(device).allocator();
  std::shared_ptr<Buffer> b(new Buffer());
  b->device_ = device;
  b->size_ = bytes;
  b->allocator_ = &a;
  b->data_ = a.allocate(bytes);
  return b;
}

std::shared_ptr<Buffer> Buffer::wrap(Device device, void* data, size_t bytes,
                                     std::shared_ptr<const void> owner, bool writable) {
  std::shared_ptr<Buffer> b(new Buffer());
  b->device_ = device;
  b->data_ = data;
  b->size_ = bytes;
  b->writable_ = writable;
  b->owner_ = std::move(owner);
  return b;
}

Buffer::~Buffer() {
  if (allocator_) allocator_->deallocate(data_, size_);
}

}  // namespace ovis
