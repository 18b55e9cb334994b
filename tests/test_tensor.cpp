// Core storage: devices, the caching allocator, tensor views and their host accessors, and the
// op front end's device checks.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/allocator.hpp"
#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"
#include "io/safetensors.hpp"
#include "ops/ops.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"

using namespace ovis;

namespace {

// Error message of f(), or "" when it does not throw ovis::Error.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_EQ(Device::cpu().str(), "cpu");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU", "cuda:123456789"})
    EXPECT_NE(error_of([&] { Device::parse(bad); }).find("--device"), std::string::npos) << bad;
}

TEST(CachingAllocator, SizeClassesBoundTheWaste) {
  EXPECT_EQ(CachingAllocator::size_class(1), 64u);
  EXPECT_EQ(CachingAllocator::size_class(64), 64u);
  EXPECT_EQ(CachingAllocator::size_class(65), 128u);
  EXPECT_EQ(CachingAllocator::size_class(512), 512u);
  for (size_t b : {size_t(513), size_t(1000), size_t(4097), size_t(123456789), size_t(1) << 30}) {
    const size_t c = CachingAllocator::size_class(b);
    EXPECT_GE(c, b);
    EXPECT_LE(double(c), double(b) * 1.125 + 64) << b;
    EXPECT_EQ(c % 64, 0u) << b;
    EXPECT_EQ(CachingAllocator::size_class(c), c) << b;  // classes are fixed points
  }
}

// A counting raw allocator over malloc.
struct CountingRaw {
  int allocs = 0, frees = 0;
  CachingAllocator::Raw raw() {
    return {[this](size_t n) {
              ++allocs;
              return std::aligned_alloc(64, n);
            },
            [this](void* p, size_t) {
              ++frees;
              std::free(p);
            }};
  }
};

TEST(CachingAllocator, ReusesFreedBlocksAndTracksThePeak) {
  CountingRaw counter;
  CachingAllocator a(Device::cpu(), counter.raw(), size_t(1) << 30);
  for (int round = 0; round < 5; ++round) {
    void* p = a.allocate(1000);
    void* q = a.allocate(5000);
    a.deallocate(p, 1000);
    a.deallocate(q, 5000);
  }
  EXPECT_EQ(counter.allocs, 2);  // only the first round reaches the system
  const AllocatorStats s = a.stats();
  EXPECT_EQ(s.allocations, 10);
  EXPECT_EQ(s.cache_hits, 8);
  EXPECT_EQ(s.in_use, 0);
  EXPECT_EQ(s.peak,
            int64_t(CachingAllocator::size_class(1000) + CachingAllocator::size_class(5000)));
  EXPECT_EQ(s.cached, s.peak);
  a.release_cached();
  EXPECT_EQ(counter.frees, 2);
  EXPECT_EQ(a.stats().cached, 0);
}

TEST(CachingAllocator, CacheLimitReleasesOtherClassesFirst) {
  CountingRaw counter;
  CachingAllocator a(Device::cpu(), counter.raw(), 3000);
  void* big = a.allocate(2048);
  void* small = a.allocate(1024);
  a.deallocate(big, 2048);    // cached: 2048
  a.deallocate(small, 1024);  // 3072 > 3000: the 2048 block goes back to the system
  EXPECT_EQ(counter.frees, 1);
  EXPECT_EQ(a.stats().cached, 1024);
  void* again = a.allocate(1024);
  EXPECT_EQ(again, small);  // still cached
  a.deallocate(again, 1024);
}

TEST(CachingAllocator, OutOfMemoryIsAClearError) {
  CachingAllocator a(Device::cpu(),
                     {[](size_t) { return static_cast<void*>(nullptr); }, [](void*, size_t) {}}, 0);
  EXPECT_NE(error_of([&] { a.allocate(100); }).find("out of memory on cpu"), std::string::npos);
}

TEST(Tensor, ViewsShareStorageAndOffsets) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor rows = t.slice_rows(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 2}));
  EXPECT_EQ(rows.offset(), 2 * sizeof(float));
  EXPECT_EQ(rows.f32()[0], 2.0f);
  rows.mutable_f32()[0] = 9.0f;
  EXPECT_EQ(t.f32()[2], 9.0f);
  Tensor c = t.clone();
  c.mutable_f32()[0] = -1.0f;
  EXPECT_EQ(t.f32()[0], 0.0f);
  EXPECT_EQ(t.reshape({-1}).shape(), (Shape{6}));
  EXPECT_TRUE(t.to(Device::cpu()).device_ptr() == t.device_ptr());  // already there: no copy
}

TEST(Tensor, ReadOnlyWeightViewsRefuseWrites) {
  // A checkpoint tensor is a view of the read-only mapping: a write is a clear error, not a
  // segfault.
  TensorStore store = TensorStore::open_dir(test::fixture_dir());
  Tensor w = store.get("llm.model.norm.weight");
  EXPECT_FALSE(w.writable());
  EXPECT_NE(w.data<uint16_t>(), nullptr);  // reading is fine
  const std::string msg = error_of([&] { w.mutable_data<uint16_t>()[0] = 0; });
  EXPECT_NE(msg.find("read-only"), std::string::npos) << msg;
}

TEST(Tensor, ReusedActivationsDoNotReachTheSystemAgain) {
  const AllocatorStats before = host_allocator().stats();
  for (int i = 0; i < 20; ++i) {
    Tensor a = Tensor::empty({1000, 1000});
    Tensor b = Tensor::empty({1000, 1000});
  }
  const AllocatorStats after = host_allocator().stats();
  EXPECT_EQ(after.allocations - before.allocations, 40);
  EXPECT_LE(after.system_allocs - before.system_allocs, 2);
}

#if !defined(OVIS_CUDA)
// A stand-in "cuda" device whose memory is host memory, to exercise the device checks without a
// GPU (only in builds without the real CUDA backend, which registers the real one).
class FakeCudaMemory final : public DeviceMemory {
 public:
  FakeCudaMemory()
      : alloc_(Device::cuda(0),
               {[](size_t n) { return std::aligned_alloc(64, n); },
                [](void* p, size_t) { std::free(p); }},
               size_t(1) << 30) {}
  Allocator& allocator() override { return alloc_; }
  void copy(void* dst, Device, const void* src, Device, size_t n) override {
    std::memmove(dst, src, n);
  }
  void zero(void* dst, size_t n) override { std::memset(dst, 0, n); }

 private:
  CachingAllocator alloc_;
};

TEST(Tensor, DeviceTensorsNeedAnExplicitCopy) {
  static FakeCudaMemory fake;
  register_device_memory(Device::Type::CUDA, [](int) -> DeviceMemory& { return fake; });
  const Tensor host = Tensor::from_vector({1, 2, 3}, {3});
  const Tensor dev = host.to(Device::cuda(0));
  EXPECT_EQ(dev.device(), Device::cuda(0));
  std::string msg = error_of([&] { (void)dev.f32(); });
  EXPECT_NE(msg.find("on cuda:0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sync point"), std::string::npos) << msg;
  EXPECT_EQ(dev.to_vector(), (std::vector<float>{1, 2, 3}));  // explicit copy back
  // Ops check that every tensor lives on the context's device.
  const ops::Context c = test::cpu_ctx();
  Tensor y = host.clone();
  msg = error_of([&] { ops::add_(c, y, dev); });
  EXPECT_NE(msg.find("a tensor on cuda:0 was given to the cpu backend"), std::string::npos) << msg;
  register_device_memory(Device::Type::CUDA, nullptr);
}
#endif

TEST(Backend, UnavailableDeviceIsOneClearLine) {
#if !defined(OVIS_CUDA)
  const std::string msg = error_of([] { ops::make_backend(Device::cuda(0)); });
  EXPECT_NE(msg.find("no CUDA backend"), std::string::npos) << msg;
  EXPECT_EQ(ops::default_device(), Device::cpu());
#endif
  EXPECT_FALSE(ops::list_devices().empty());
  EXPECT_EQ(ops::list_devices()[0].device, Device::cpu());
}

}  // namespace

#include "ops/cpu/plan_cache.hpp"

namespace {

TEST(PlanCache, BoundedAndLeastRecentlyUsedFirst) {
  ovis::ops::cpu::PlanCache<int, int> cache(3);
  int made = 0;
  auto make = [&](int k) {
    ++made;
    return k * 10;
  };
  EXPECT_EQ(cache.get(1, make), 10);
  cache.get(2, make);
  cache.get(3, make);
  cache.get(1, make);  // hit: 1 is now the most recent
  EXPECT_EQ(made, 3);
  cache.get(4, make);  // evicts 2, the least recently used
  EXPECT_EQ(cache.size(), 3u);
  cache.get(1, make);
  cache.get(3, make);
  EXPECT_EQ(made, 4);
  cache.get(2, make);  // was evicted: made again
  EXPECT_EQ(made, 5);
}

}  // namespace
