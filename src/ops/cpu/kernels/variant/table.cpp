// This ISA's entry in the dispatch table (variant_table.hpp).
#include "ops/cpu/kernels/variant/common.hpp"

#define OVIS_STRINGIFY_(x) #x
#define OVIS_STRINGIFY(x) OVIS_STRINGIFY_(x)

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

const VariantTable& variant_table() {
  static const VariantTable table{OVIS_STRINGIFY(OVIS_KERNEL_NS),
                                  gemm_bf16,
                                  gemv_bf16,
                                  convert_f32_to_bf16,
                                  gemv_w16,
                                  gemv_group_bf16,
                                  gemv_group_w16,
                                  quant_kernels,
                                  packed_bf16_bytes,
                                  pack_bf16,
                                  gemm_bf16_packed,
                                  gemv_group_bf16_packed,
                                  row_kernels};
  return table;
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
