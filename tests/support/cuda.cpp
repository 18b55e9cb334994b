#include "support/cuda.hpp"

#include <memory>

#include "core/error.hpp"

namespace ovis::test {

namespace {

struct CudaProbe {
  std::unique_ptr<ops::Backend> backend;
  std::string why;
};

CudaProbe& probe() {
  static CudaProbe p = [] {
    CudaProbe r;
    r.why = ops::cuda_unavailable_reason();
    if (r.why.empty()) {
      try {
        r.backend = ops::make_backend(Device::cuda(0));
      } catch (const Error& e) {
        r.why = e.what();
      }
    }
    return r;
  }();
  return p;
}

}  // namespace

ops::Backend* cuda_backend() {
  return probe().backend.get();
}

std::string cuda_skip_reason() {
  return probe().why;
}

ops::Context cuda_ctx(ops::Precision p) {
  OVIS_ASSERT(cuda_backend());
  return ops::Context{cuda_backend(), p};
}

Tensor host_f32(const Tensor& t) {
  const Tensor h = t.to(Device::cpu());
  return h.dtype() == DType::F32 ? h : h.to_f32();
}

}  // namespace ovis::test
