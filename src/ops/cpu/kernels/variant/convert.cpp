// f32 -> bf16 conversion of activations, compiled once per ISA.
#include "ops/cpu/kernels/variant/common.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

void convert_f32_to_bf16(int64_t n, const float* src, uint16_t* dst, int threads) {
  if (n <= 0) return;
  // Below ~256 KiB a second thread costs more than it converts.
  const int T = n >= (int64_t(1) << 16) ? resolve_threads(threads) : 1;
#pragma omp parallel num_threads(T) if (T > 1)
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ceil_div(ceil_div(n, nt), 16) * 16;
    const int64_t i0 = imin(n, t * chunk), i1 = imin(n, i0 + chunk);
    convert_to_bf16(src + i0, i1 - i0, dst + i0);
  }
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
