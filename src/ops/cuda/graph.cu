// Op graphs on CUDA: the body is recorded once with stream capture and replayed with one
// cudaGraphLaunch. Every tensor the body allocates comes from a pool private to the graph: the
// graph's kernels keep using those addresses at each replay, so the blocks must never be handed
// to anyone else while the graph lives (blocks freed inside the body return to the same pool and
// may be reused later in the body, which is safe for the same stream-order reason as the main
// allocator's reuse). The pool outlives the graph until the last tensor allocated from it (for
// example an output still held by the caller) is gone.
#include <mutex>

#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"

namespace ovis::ops::cuda {

namespace {

class GraphPool final : public Allocator {
 public:
  explicit GraphPool(int index)
      : cache_(Device::cuda(index),
               {[index](size_t n) -> void* {
                  OVIS_CU(cudaSetDevice(index));
                  void* p = nullptr;
                  if (cudaMalloc(&p, n) != cudaSuccess) {
                    cudaGetLastError();
                    return nullptr;
                  }
                  return p;
                },
                [index](void* p, size_t) {
                  OVIS_CU(cudaSetDevice(index));
                  OVIS_CU(cudaFree(p));
                }},
               SIZE_MAX) {}

  Device device() const override { return cache_.device(); }
  void* allocate(size_t bytes) override { return cache_.allocate(bytes); }
  void deallocate(void* p, size_t bytes) override {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cache_.deallocate(p, bytes);
      last = retired_ && cache_.stats().in_use == 0;
    }
    if (last) delete this;
  }
  AllocatorStats stats() const override { return cache_.stats(); }
  void reset_peak() override { cache_.reset_peak(); }
  void release_cached() override { cache_.release_cached(); }

  // The graph is gone: free now, or when the last outside tensor is.
  void retire() {
    bool last = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      retired_ = true;
      last = cache_.stats().in_use == 0;
    }
    if (last) delete this;
  }

 private:
  ~GraphPool() override = default;  // releases every block (CachingAllocator's destructor)
  CachingAllocator cache_;
  std::mutex mu_;
  bool retired_ = false;
};

class CudaGraph final : public OpGraph {
 public:
  CudaGraph(CudaBackend& b, const std::function<void()>& body)
      : st_(b.state()), pool_(new GraphPool(b.state().index())) {
    try {
      record(body);
    } catch (...) {
      // Whatever step failed (begin, body, end, instantiate): nothing outlives the throw but the
      // pool, which goes once the body's tensors that escaped it are freed.
      if (exec_) cudaGraphExecDestroy(exec_);
      if (graph_) cudaGraphDestroy(graph_);
      pool_->retire();
      throw;
    }
  }

  ~CudaGraph() override {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
    pool_->retire();
  }

  void replay() override {
    st_.make_current();
    OVIS_CU(cudaGraphLaunch(exec_, st_.stream()));
  }

 private:
  void record(const std::function<void()>& body) {
    st_.make_current();
    // Library handles and the GEMM workspace exist before the capture (no allocation inside).
    st_.lt();
    st_.blas();
    const cudaStream_t s = st_.stream();
    OVIS_CU(cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed));
    st_.route_allocations(pool_);  // only once capturing: a failed begin leaves the routing alone
    try {
      body();
    } catch (...) {
      st_.route_allocations(nullptr);
      cudaGraph_t g = nullptr;
      cudaStreamEndCapture(s, &g);
      if (g) cudaGraphDestroy(g);
      cudaGetLastError();
      throw;
    }
    st_.route_allocations(nullptr);
    OVIS_CU(cudaStreamEndCapture(s, &graph_));
    OVIS_CU(cudaGraphInstantiate(&exec_, graph_, 0));
  }

  DeviceState& st_;
  GraphPool* pool_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace

std::unique_ptr<OpGraph> CudaBackend::capture(const Context&, std::function<void()> body) {
  return std::make_unique<CudaGraph>(*this, body);
}

}  // namespace ovis::ops::cuda
