// Internal to the CPU attention: the problem description shared by the kernels and the softmax
// row helpers they use. Scores are raw dot products; scale is applied in fp32 inside the softmax,
// as flash-attention and SDPA do (spec §9.5).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/dtype.hpp"
#include "ops/cpu/vec_math.hpp"

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

// max_j s[j]·scale over j < n (-inf when n == 0).
inline float row_max_scaled(const float* s, int64_t n, float scale) {
  float mx = -INFINITY;
  int64_t j = 0;
#if defined(__AVX512F__)
  __m512 m = _mm512_set1_ps(-INFINITY);
  const __m512 sc = _mm512_set1_ps(scale);
  for (; j + 16 <= n; j += 16) m = _mm512_max_ps(m, _mm512_mul_ps(_mm512_loadu_ps(s + j), sc));
  mx = _mm512_reduce_max_ps(m);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 m = _mm256_set1_ps(-INFINITY);
  const __m256 sc = _mm256_set1_ps(scale);
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_mul_ps(_mm256_loadu_ps(s + j), sc));
  mx = hmax_ps(m);
#endif
  for (; j < n; ++j) mx = std::max(mx, s[j] * scale);
  return mx;
}

// In place: s[j] = e^(s[j]·scale − mx) for j < n and 0 for n <= j < n_pad; returns Σ_j<n s[j]
// (summed before any rounding). With bf16_p the stored values are rounded to bf16, as the
// reference feeds P to the P·V GEMM in bf16.
inline float exp_row_f32(float* s, int64_t n, int64_t n_pad, float scale, float mx, bool bf16_p) {
  float sum = 0;
  int64_t j = 0;
#if defined(__AVX512F__)
  const __m512 sc = _mm512_set1_ps(scale), m = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (; j < n; j += 16) {
    const __mmask16 k = n - j >= 16 ? __mmask16(0xffff) : tail_mask(n - j);
    const __m512 e = exp_ps(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, s + j), sc, m));
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    _mm512_mask_storeu_ps(s + j, k, e);
  }
  sum = _mm512_reduce_add_ps(acc);
  j = n;
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 sc = _mm256_set1_ps(scale), m = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  for (; j < n; j += 8) {
    const __m256i k = tail_mask8(n - j < 8 ? n - j : 8);
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_fmsub_ps(_mm256_maskload_ps(s + j, k), sc, m)),
                                   _mm256_castsi256_ps(k));
    acc = _mm256_add_ps(acc, e);
    _mm256_maskstore_ps(s + j, k, e);
  }
  sum = hsum_ps(acc);
  j = n;
#else
  for (; j < n; ++j) sum += (s[j] = std::exp(s[j] * scale - mx));
#endif
  if (bf16_p)
    for (int64_t t = 0; t < n; ++t) s[t] = round_bf16(s[t]);
  std::fill(s + j, s + std::max(n, n_pad), 0.0f);
  return sum;
}

}  // namespace ovis::ops::cpu
