// Fork/join for the decode-sized kernels that does not wait for latecomers.
//
// A decode step runs ~250 short parallel sections (GEMVs, attention over the cache). With an
// OpenMP region each one ends in a barrier that waits for every thread of the team, so whenever
// the OS runs something else on one core for a moment (another process, a kernel thread) the
// whole step stalls on it. Here work is split into chunks that threads claim one at a time:
// when the caller runs out of chunks it waits only for chunks already being run, never for a
// helper that has not started, so a busy core costs its share of the work and nothing more.
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

namespace ovis::ops::cpu::kernels {

using ChunkFn = void (*)(void* ctx, int64_t chunk);

// Runs fn(ctx, i) exactly once for every i in [0, chunks), on the calling thread and up to
// threads - 1 pool helpers (<= 0: omp_get_max_threads()), and returns when all have run. Calls
// from inside a chunk, from an OpenMP parallel region, or while another thread's call is in
// progress run every chunk on the calling thread (same results, no parallelism). If chunks
// throw, the first exception is rethrown on the calling thread after all chunks have run.
void parallel_chunks(int threads, int64_t chunks, ChunkFn fn, void* ctx);

// The same for a callable f(int64_t chunk) (not for kernels/variant/ code, which may not
// instantiate templates from other headers: it passes a plain function).
template <class F>
void parallel_chunks(int threads, int64_t chunks, F&& f) {
  using Fn = std::remove_reference_t<F>;
  parallel_chunks(
      threads, chunks, [](void* ctx, int64_t i) { (*static_cast<Fn*>(ctx))(i); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

}  // namespace ovis::ops::cpu::kernels
