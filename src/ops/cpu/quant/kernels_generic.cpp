// The generic copy of the quantized-weight kernels (see kernels_impl.hpp; flags set in
// CMakeLists.txt).
#define OVIS_QISA generic
#define OVIS_QISA_LEVEL 0
#include "ops/cpu/quant/kernels_impl.hpp"
