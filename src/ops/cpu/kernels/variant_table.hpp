// The function table every ISA variant exports (see kernels.hpp). Each copy of kernels/variant/
// is compiled into its own namespace; only this table crosses from a variant to dispatch.cpp.
#pragma once
#include <cstdint>

#include "ops/cpu/kernels/kernels.hpp"

namespace ovis::ops::cpu::kernels {

struct VariantTable {
  const char* name;
  void (*gemm_bf16)(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const uint16_t* w,
                    int64_t ldw, WeightLayout layout, const float* bias, float* c, int64_t ldc,
                    int threads);
  void (*gemv_bf16)(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w,
                    const float* bias, float* y, int threads);
  void (*convert_f32_to_bf16)(int64_t n, const float* src, uint16_t* dst, int threads);
  void (*gemv_w16)(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w, bool w_f16,
                   const float* bias, float* y, int threads);
  void (*gemv_group_bf16)(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                          int threads);
  void (*gemv_group_w16)(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                         bool w_f16, int threads);
};

// One per compiled variant (CMake defines OVIS_KERNELS_HAVE_<ISA> for those it built).
namespace generic {
const VariantTable& variant_table();
}
namespace avx2 {
const VariantTable& variant_table();
}
namespace avx512 {
const VariantTable& variant_table();
}
namespace avx512bf16 {
const VariantTable& variant_table();
}

}  // namespace ovis::ops::cpu::kernels
