#include "ops/cpu/kernels/work_pool.hpp"

#include <immintrin.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace ovis::ops::cpu::kernels {

namespace {

// How long an idle helper spins before it sleeps: covers the serial ops between two GEMVs of a
// decode step (norms, RoPE, a few microseconds) and the host work between tokens, and no more:
// an OpenMP region that follows a GEMV (the DiT's modulation) shares a core with the spinner.
constexpr auto kSpin = std::chrono::microseconds(200);

thread_local bool t_in_chunk = false;

// One job at a time. The job is published by a release store of ticket_ = gen << 32; a thread
// may run chunk i of job gen only after it moved ticket_ from (gen, i) to (gen, i + 1), so a
// helper that wakes late for an old job fails that exchange and runs nothing. The fields of a
// job are not rewritten before all of its chunks are done, which needs every claimed chunk.
class Pool {
 public:
  static Pool& instance() {
    static Pool* p = new Pool();  // never destroyed: helpers block in it until exit
    return *p;
  }

  void run(int threads, int64_t chunks, ChunkFn fn, void* ctx) {
    if (chunks <= 0) return;
    if (threads <= 1 || chunks == 1 || t_in_chunk || omp_in_parallel() || !busy_.try_lock()) {
      std::exception_ptr error;
      for (int64_t i = 0; i < chunks; ++i) {
        try {
          fn(ctx, i);
        } catch (...) {
          if (!error) error = std::current_exception();
        }
      }
      if (error) std::rethrow_exception(error);
      return;
    }
    std::lock_guard<std::mutex> lock(busy_, std::adopt_lock);
    OVIS_ASSERT(chunks < (int64_t(1) << 31));
    ensure_helpers(threads - 1);
    const uint32_t g = gen_.load(std::memory_order_relaxed) + 1;
    fn_.store(fn, std::memory_order_relaxed);
    ctx_.store(ctx, std::memory_order_relaxed);
    chunks_.store(chunks, std::memory_order_relaxed);
    helpers_wanted_.store(threads - 1, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    ticket_.store(uint64_t(g) << 32, std::memory_order_release);
    gen_.store(g, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) gen_.notify_all();
    t_in_chunk = true;
    work(g);
    t_in_chunk = false;
    while (done_.load(std::memory_order_acquire) < chunks) _mm_pause();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void ensure_helpers(int n) {
    while (int(helpers_.size()) < n) {
      const int index = int(helpers_.size());
      helpers_.emplace_back([this, index] { helper_loop(index); });
    }
  }

  // Claims and runs chunks of job g until none is left.
  void work(uint32_t g) {
    for (;;) {
      uint64_t t = ticket_.load(std::memory_order_acquire);
      if (uint32_t(t >> 32) != g) return;
      const int64_t i = int64_t(uint32_t(t));
      if (i >= chunks_.load(std::memory_order_relaxed)) return;
      if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel,
                                         std::memory_order_acquire))
        continue;
      try {
        fn_.load(std::memory_order_relaxed)(ctx_.load(std::memory_order_relaxed), i);
      } catch (...) {
        // The first error goes to the caller once every chunk is done (its stack is in use
        // until then).
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
      }
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void helper_loop(int index) {
    t_in_chunk = true;  // a chunk never starts a nested job on the pool
    uint32_t seen = 0;
    for (;;) {
      uint32_t g;
      auto spin_until = std::chrono::steady_clock::now() + kSpin;
      int spins = 0;
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        _mm_pause();
        if (++spins % 256) continue;
        if (std::chrono::steady_clock::now() < spin_until) continue;
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        if (gen_.load(std::memory_order_seq_cst) == seen)
          gen_.wait(seen, std::memory_order_seq_cst);
        sleepers_.fetch_sub(1, std::memory_order_seq_cst);
        spin_until = std::chrono::steady_clock::now() + kSpin;
      }
      seen = g;
      if (index < helpers_wanted_.load(std::memory_order_relaxed)) work(g);
    }
  }

  std::mutex busy_;
  std::mutex error_mu_;
  std::exception_ptr error_;
  std::vector<std::thread> helpers_;
  std::atomic<uint32_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int64_t> chunks_{0};
  std::atomic<int64_t> done_{0};
  std::atomic<int> helpers_wanted_{0};
  std::atomic<ChunkFn> fn_{nullptr};
  std::atomic<void*> ctx_{nullptr};
};

}  // namespace

void parallel_chunks(int threads, int64_t chunks, ChunkFn fn, void* ctx) {
  Pool::instance().run(threads > 0 ? threads : omp_get_max_threads(), chunks, fn, ctx);
}

}  // namespace ovis::ops::cpu::kernels
