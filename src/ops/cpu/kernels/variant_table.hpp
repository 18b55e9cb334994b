// The function table every ISA variant exports (see kernels.hpp). Each copy of kernels/variant/
// is compiled into its own namespace; only this table crosses from a variant to dispatch.cpp.
#pragma once
#include <cstddef>
#include <cstdint>

#include "ops/cpu/kernels/kernels.hpp"

namespace ovis::ops::cpu::kernels {

// Activations quantised per 32-element block: q[m·K + k] = round(x / d), d = max|x| / 127 of the
// block; s = Σq of the block; ds = d·s.
struct ActBlocks {
  const int8_t* q;   // [M][K]
  const float* d;    // [M][K/32]
  const int32_t* s;  // [M][K/32]
  const float* ds;   // [M][K/32]
  int64_t M, K;
};

// Products with Q8_0 / Q4_K weights w [N][K] (ggml block layouts), driven by quant.cpp.
struct QuantKernels {
  // Rows [m0, m1) of x [·][K] into `a`'s buffers (K a multiple of 32).
  void (*quantize_act)(const float* x, int64_t K, int64_t m0, int64_t m1, int8_t* q, float* d,
                       int32_t* s, float* ds);
  // y[m·ldy + n] = Σ_k x[m, k]·w[n, k] (+ bias[n]) for all m < a.M (<= 4), n in [n0, n1).
  void (*gemv_q8_0)(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy);
  void (*gemv_q4_k)(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy);
  // The levels from AVX2 on keep weights in 16-row panels (variant/quant.cpp; null members on
  // the scalar level; packed_bytes is 0 for a type a level keeps in ggml's rows: Q8_0 below
  // VNNI): q4 selects Q4_K, else Q8_0.
  // Panel GEMM on ggml rows: columns [n0, n1) (n0 a multiple of 16) of y [M][ldy] for every row,
  // packing those weight rows into `scratch` (gemm_scratch_bytes(q4, n1 - n0, K) bytes) first.
  void (*gemm_rows)(bool q4, const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1,
                    const float* bias, float* y, int64_t ldy, void* scratch);
  size_t (*gemm_scratch_bytes)(bool q4, int64_t cols, int64_t K);
  // Bytes of a whole weight [N][K] in panels; panels [p0, p1) of w into dst (64-byte aligned,
  // the first at dst).
  int64_t (*packed_bytes)(bool q4, int64_t N, int64_t K);
  void (*pack_panels)(bool q4, const uint8_t* w, int64_t N, int64_t K, int64_t p0, int64_t p1,
                      uint8_t* dst);
  // Columns [n0, n1) (n0 a multiple of 16) of y [M][N] for every row, from a weight stored in
  // panels (wp: panel 0).
  void (*gemm_packed)(bool q4, const ActBlocks& a, const uint8_t* wp, int64_t N, int64_t n0,
                      int64_t n1, const float* bias, float* y);
};

// Float row math outside the GEMMs (variant/rows.cpp), on the level's vector width: the public
// functions of kernels.hpp ("Row math") with the same arguments.
struct RowKernels {
  void (*x_sigmoid)(bool gelu_tanh, const float* x, const float* u, float* o, int64_t n);
  void (*softmax_row)(float* r, int64_t n);
  float (*max_scaled)(const float* s, int64_t n, float scale);
  float (*exp_scaled)(float* s, int64_t n, float scale, float mx, bool round_bf16);
  void (*key_scores)(const float* q, const int64_t* qoff, const float* k, const int64_t* col,
                     const int64_t* end, int64_t j, int64_t rows, int64_t d, float* s, int64_t ld);
  void (*value_accumulate)(const float* v, const int64_t* col, const int64_t* end, int64_t j,
                           int64_t rows, int64_t d, const float* s, int64_t ld, float* acc,
                           int64_t ld_acc);
  void (*round_bf16)(const float* src, int64_t n, float* dst);
  void (*widen_16)(const uint16_t* src, bool f16, int64_t n, float* dst);
};

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
  const QuantKernels& (*quant)();
  int64_t (*packed_bf16_bytes)(int64_t N, int64_t K);
  void (*pack_bf16)(int64_t N, int64_t K, const uint16_t* w, void* dst, int threads);
  void (*gemm_bf16_packed)(int64_t M, int64_t N, int64_t K, const float* a, const void* wp,
                           const float* bias, float* c, int threads);
  void (*gemv_group_bf16_packed)(int64_t M, int64_t K, const float* x, const PackedOut* outs,
                                 int count, int threads);
  const RowKernels& (*rows)();
};

// The table of the variant in use (active_isa()), for dispatchers outside dispatch.cpp.
const VariantTable& active_variant_table();

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
