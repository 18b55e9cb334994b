// The avx512vnni copy of the quantized-weight kernels (see kernels_impl.hpp; flags set in
// CMakeLists.txt).
#define OVIS_QISA avx512vnni
#define OVIS_QISA_LEVEL 2
#include "ops/cpu/quant/kernels_impl.hpp"
