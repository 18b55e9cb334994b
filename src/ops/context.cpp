#include <omp.h>

#include <atomic>
#include <cstdlib>

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

namespace {
std::atomic<Precision> g_precision{Precision::F32};
}

bool cpu_has_avx512_bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
}

Precision default_precision() {
  return cpu_has_avx512_bf16() ? Precision::BF16 : Precision::F32;
}
void set_precision(Precision p) {
  g_precision = p;
}
Precision precision() {
  return g_precision;
}

void set_num_threads(int n) {
  if (n <= 0) {
    // "All cores" unless the environment pins a count (OMP_NUM_THREADS), e.g. under ctest -j.
    const char* env = std::getenv("OMP_NUM_THREADS");
    n = env && std::atoi(env) > 0 ? std::atoi(env) : omp_get_num_procs();
  }
  omp_set_num_threads(n);
}
int num_threads() {
  return omp_get_max_threads();
}

}  // namespace ovis::ops

namespace ovis {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F32:
      return "f32";
    case Precision::BF16:
      return "bf16";
    default:
      return "auto";
  }
}

Precision parse_precision(const std::string& s, const std::string& what) {
  if (s == "f32") return Precision::F32;
  if (s == "bf16") return Precision::BF16;
  if (s == "auto") return Precision::Auto;
  fail(what, " must be f32, bf16 or auto (got '", s, "')");
}

}  // namespace ovis
