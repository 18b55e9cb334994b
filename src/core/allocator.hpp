// Device memory allocators. Activations come from a CachingAllocator per device: blocks are
// rounded up to size classes and kept on per-class free lists when their tensors die, so the next
// op (or the next forward, or the next request) reuses them without asking the system again.
// That removes the page faults and kernel zeroing that a fresh mmap per op costs, and makes the
// memory of a repeated workload reach a fixed point after its first run.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

#include "core/device.hpp"

namespace ovis {

struct AllocatorStats {
  int64_t in_use = 0;         // bytes held by live blocks (size-class rounded)
  int64_t peak = 0;           // high-water mark of in_use since the last reset_peak()
  int64_t cached = 0;         // bytes on the free lists
  int64_t allocations = 0;    // allocate() calls
  int64_t cache_hits = 0;     // allocate() calls served from a free list
  int64_t system_allocs = 0;  // blocks obtained from the underlying allocator
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  // At least `bytes` bytes (64-byte aligned); throws ovis::Error when the device is out of memory.
  virtual void* allocate(size_t bytes) = 0;
  // `bytes` must be the value passed to allocate().
  virtual void deallocate(void* p, size_t bytes) = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Returns every cached block to the system.
  virtual void release_cached() = 0;
};

// Size-bucketed caching allocator over a raw allocator (host memory, cudaMalloc, ...).
// Size classes: multiples of 64 B up to 512 B, then 8 classes per power of two (at most 12.5%
// rounding waste). Thread-safe. For a device with one stream per backend (CUDA), a block freed
// after ops were queued on that stream may be handed to the next op of the same stream: stream
// order makes that safe without events.
class CachingAllocator final : public Allocator {
 public:
  struct Raw {
    std::function<void*(size_t)> alloc;  // returns nullptr when out of memory
    std::function<void(void*, size_t)> free;
  };
  // `cache_limit`: when the free lists would exceed it, the largest cached blocks of other size
  // classes are released first.
  CachingAllocator(Device device, Raw raw, size_t cache_limit);
  ~CachingAllocator() override;

  Device device() const override { return device_; }
  void* allocate(size_t bytes) override;
  void deallocate(void* p, size_t bytes) override;
  AllocatorStats stats() const override;
  void reset_peak() override;
  void release_cached() override;

  static size_t size_class(size_t bytes);

 private:
  void trim_locked(size_t keep_class);

  Device device_;
  Raw raw_;
  size_t cache_limit_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> blocks
  AllocatorStats stats_;
};

// The host's allocator (process-wide, like the host's memory itself). Large blocks are
// mmapped with transparent huge pages advised.
Allocator& host_allocator();

}  // namespace ovis
