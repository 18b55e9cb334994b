// The avx2 copy of the quantized-weight kernels (see kernels_impl.hpp; flags set in
// CMakeLists.txt).
#define OVIS_QISA avx2
#define OVIS_QISA_LEVEL 1
#include "ops/cpu/quant/kernels_impl.hpp"
