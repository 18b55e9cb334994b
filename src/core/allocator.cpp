#include "core/allocator.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.hpp"

namespace ovis {

size_t CachingAllocator::size_class(size_t bytes) {
  if (bytes <= 512) return std::max<size_t>(64, (bytes + 63) / 64 * 64);
  size_t p = size_t(1) << (63 - __builtin_clzll(bytes));  // highest power of two <= bytes
  const size_t step = p / 8;
  return (bytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator(Device device, Raw raw, size_t cache_limit)
    : device_(device), raw_(std::move(raw)), cache_limit_(cache_limit) {}

CachingAllocator::~CachingAllocator() {
  release_cached();
}

void* CachingAllocator::allocate(size_t bytes) {
  const size_t cls = size_class(bytes);
  std::unique_lock<std::mutex> lock(mu_);
  ++stats_.allocations;
  void* p = nullptr;
  auto it = free_.find(cls);
  if (it != free_.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    stats_.cached -= int64_t(cls);
    ++stats_.cache_hits;
  } else {
    p = raw_.alloc(cls);
    if (!p) {
      // Out of memory: give every cached block back and try once more.
      for (auto& [c, blocks] : free_)
        for (void* b : blocks) raw_.free(b, c);
      free_.clear();
      stats_.cached = 0;
      p = raw_.alloc(cls);
      if (!p)
        fail("out of memory on ", device_.str(), ": cannot allocate ", cls, " bytes (",
             stats_.in_use, " bytes in use)");
    }
    ++stats_.system_allocs;
  }
  stats_.in_use += int64_t(cls);
  stats_.peak = std::max(stats_.peak, stats_.in_use);
  return p;
}

void CachingAllocator::deallocate(void* p, size_t bytes) {
  if (!p) return;
  const size_t cls = size_class(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.in_use -= int64_t(cls);
  free_[cls].push_back(p);
  stats_.cached += int64_t(cls);
  if (size_t(stats_.cached) > cache_limit_) trim_locked(cls);
}

void CachingAllocator::trim_locked(size_t keep_class) {
  // Largest classes first: they free the most with the fewest system calls.
  for (auto it = free_.rbegin(); it != free_.rend() && size_t(stats_.cached) > cache_limit_; ++it) {
    if (it->first == keep_class) continue;
    while (!it->second.empty() && size_t(stats_.cached) > cache_limit_) {
      raw_.free(it->second.back(), it->first);
      it->second.pop_back();
      stats_.cached -= int64_t(it->first);
    }
  }
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak = stats_.in_use;
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [c, blocks] : free_)
    for (void* b : blocks) raw_.free(b, c);
  free_.clear();
  stats_.cached = 0;
}

namespace {

constexpr size_t kHostMmapMin = size_t(2) << 20;

void* host_alloc(size_t bytes) {
  if (bytes >= kHostMmapMin) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    madvise(p, bytes, MADV_HUGEPAGE);
    return p;
  }
  return std::aligned_alloc(64, bytes);
}

void host_free(void* p, size_t bytes) {
  if (bytes >= kHostMmapMin)
    munmap(p, bytes);
  else
    std::free(p);
}

}  // namespace

Allocator& host_allocator() {
  // Cached host blocks are capped at 8 GiB; a repeated workload settles far below that.
  static CachingAllocator* a =
      new CachingAllocator(Device::cpu(), {host_alloc, host_free}, size_t(8) << 30);
  return *a;
}

}  // namespace ovis
