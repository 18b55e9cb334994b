#include "ops/cpu/cpu_backend.hpp"

#include <omp.h>

#include <cstdlib>

#include "ops/cpu/features.hpp"

namespace ovis::ops::cpu {

int resolve_threads(int requested) {
  if (requested > 0) return requested;
  // "All cores" unless the environment pins a count (OMP_NUM_THREADS), e.g. under ctest -j.
  const char* env = std::getenv("OMP_NUM_THREADS");
  return env && std::atoi(env) > 0 ? std::atoi(env) : omp_get_num_procs();
}

bool has_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
}

CpuBackend::CpuBackend(const BackendOptions& opts)
    : threads_(resolve_threads(opts.threads)),
      band_bytes_(std::max<size_t>(opts.conv_band_bytes, 1)),
      gemm_(make_gemm_plans(), destroy_gemm_plans),
      conv_(make_conv_plans(), destroy_conv_plans) {}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::name() const {
  std::string isa = amx_enabled() ? "amx" : has_avx512_bf16() ? "avx512bf16" : "avx2";
  return "cpu (" + std::to_string(threads_) + " threads, " + isa + ")";
}

Allocator& CpuBackend::allocator() {
  return host_allocator();
}

void CpuBackend::activate() {
  // The OpenMP team size is a per-thread setting: apply this backend's count to the calling
  // thread (cheap when unchanged).
  if (omp_get_max_threads() != threads_) omp_set_num_threads(threads_);
}

}  // namespace ovis::ops::cpu
