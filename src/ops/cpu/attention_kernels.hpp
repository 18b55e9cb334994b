// Internal to the CPU attention: the problem description shared by the kernels and the softmax
// row helpers they use. Scores are raw dot products; scale is applied in fp32 inside the softmax,
// as flash-attention and SDPA do (spec §9.5).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ops/cpu/kernels/kernels.hpp"

namespace ovis::ops::cpu {

// q [lq, q_heads·d], k/v [lk, kv_heads·d], out [lq, q_heads·d]; all row-major f32. A head is the
// strided [L, d] view at column h·d.
struct AttentionArgs {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  int64_t lq, lk, d;
  int q_heads, kv_heads;
  float scale;
  bool causal;

  int64_t ldq() const { return int64_t(q_heads) * d; }
  int64_t ldk() const { return int64_t(kv_heads) * d; }
  int group() const { return q_heads / kv_heads; }
  // Query i sees keys [0, key_end(i)): with causal, j <= i + (lk - lq).
  int64_t key_end(int64_t i) const {
    return causal ? std::clamp<int64_t>(i + lk - lq + 1, 0, lk) : lk;
  }
};

// Per (head, 32-query tile) with AMX bf16 tiles; needs amx_enabled(). See attention_amx.cpp.
void attention_amx(const AttentionArgs& a);

// s[j] = e^(s[j]·scale − mx) for j < n (rounded to bf16 with bf16_p, as the reference feeds P
// to the P·V GEMM in bf16) and 0 for n <= j < n_pad; returns Σ_j<n s[j] before any rounding.
inline float exp_row_f32(float* s, int64_t n, int64_t n_pad, float scale, float mx, bool bf16_p) {
  const float sum = kernels::exp_scaled(s, n, scale, mx, bf16_p);
  std::fill(s + n, s + std::max(n, n_pad), 0.0f);
  return sum;
}

}  // namespace ovis::ops::cpu
