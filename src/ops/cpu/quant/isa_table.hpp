// The kernels one ISA level provides for block-quantized weights (quant_ops.hpp dispatches among
// them). kernels_impl.hpp is compiled once per level (kernels_<level>.cpp, each with its own
// compiler flags) into its own namespace with internal linkage; only the table crosses over, so
// no code built for a wider ISA can be picked by the linker for a narrower one.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ovis::ops::cpu::quant {

// Activations quantised per 32-element block: q[m·K + k] = round(x / d), d = max|x| / 127 of the
// block; s = Σq of the block; ds = d·s.
struct ActBlocks {
  const int8_t* q;   // [M][K]
  const float* d;    // [M][K/32]
  const int32_t* s;  // [M][K/32]
  const float* ds;   // [M][K/32]
  int64_t M, K;
};

struct IsaTable {
  const char* name;
  // Rows [m0, m1) of x [·][K] into `a`'s buffers (K a multiple of 32).
  void (*quantize_act)(const float* x, int64_t K, int64_t m0, int64_t m1, int8_t* q, float* d,
                       int32_t* s, float* ds);
  // y[m·ldy + n] = Σ_k x[m, k]·w[n, k] (+ bias[n]) for all m < a.M (<= 4), n in [n0, n1).
  void (*gemv_q8_0)(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy);
  void (*gemv_q4_k)(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy);
  // Panel GEMM (null where the level has none: dispatch then tiles the GEMV). Computes columns
  // [n0, n1) of y [M][ldy] for every row, packing the weight columns into `scratch`
  // (gemm_scratch_bytes(n1 - n0, K) bytes).
  void (*gemm_q8_0)(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy, void* scratch);
  void (*gemm_q4_k)(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy, void* scratch);
  size_t (*gemm_scratch_bytes)(int64_t cols, int64_t K);
};

namespace generic {
const IsaTable& isa_table();
}
namespace avx2 {
const IsaTable& isa_table();
}
namespace avx512vnni {
const IsaTable& isa_table();
}

}  // namespace ovis::ops::cpu::quant
