// Vectorised float32 math of the kernel variants (AVX-512, else AVX2, on the level compiled).
// Only included by files under kernels/variant/ (see common.hpp for why).
#pragma once
#include "ops/cpu/kernels/variant/common.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

// exp_ps: e^x, relative error < 2 ulp over the float range; -inf -> 0, overflow -> inf, NaN
// stays NaN. x (clamped to [kLo, kHi]) = n·ln2 + r with |r| <= ln2/2 (two-constant Cody-Waite),
// e^r by its degree-7 Taylor polynomial (truncation < 5e-9, Horner from kPoly[0]), then scaled
// by 2^n. Both vector widths use these constants.
struct ExpConsts {
  static constexpr float kLo = -104.0f, kHi = 88.8f, kLog2e = 1.44269504088896341f;
  static constexpr float kLn2Hi = 0.693145751953125f, kLn2Lo = 1.4286068202862268e-06f;
  static constexpr float kPoly[8] = {1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24,
                                     1.0f / 6,    0.5f,       1.0f,       1.0f};
};

#if defined(__AVX512F__)
inline __m512 exp_ps(__m512 x) {
  using C = ExpConsts;
  x = _mm512_max_ps(_mm512_set1_ps(C::kLo), x);  // operand order keeps NaN
  x = _mm512_min_ps(_mm512_set1_ps(C::kHi), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(C::kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(C::kLn2Lo), r);
  __m512 p = _mm512_set1_ps(C::kPoly[0]);
  for (int i = 1; i < 8; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C::kPoly[i]));
  return _mm512_scalef_ps(p, n);
}

// x / (1 + e^-y): SiLU for y = x; GELU-tanh for y = 2·√(2/π)·(x + 0.044715x³), because
// 0.5·(1 + tanh(u)) = 1 / (1 + e^(-2u)).
inline __m512 x_sigmoid_ps(__m512 x, __m512 y) {
  const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), y));
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

// Tail mask for the last n < 16 lanes.
inline __mmask16 tail_mask(int64_t n) {
  return __mmask16((1u << n) - 1u);
}
#elif defined(__AVX2__) && defined(__FMA__)
// On 8 lanes. 2^n (n in [-150, 128]) is applied as two exact power-of-two factors, each a
// normal float, so only the last product rounds: the same result as vscalefps.
inline __m256 exp_ps(__m256 x) {
  using C = ExpConsts;
  x = _mm256_max_ps(_mm256_set1_ps(C::kLo), x);  // operand order keeps NaN
  x = _mm256_min_ps(_mm256_set1_ps(C::kHi), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(C::kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(C::kLn2Lo), r);
  __m256 p = _mm256_set1_ps(C::kPoly[0]);
  for (int i = 1; i < 8; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(C::kPoly[i]));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

inline __m256 x_sigmoid_ps(__m256 x, __m256 y) {
  const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), y));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// Lane mask (for _mm256_maskload_ps / _mm256_maskstore_ps) of the first n <= 8 lanes.
inline __m256i tail_mask8(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline float hmax_ps(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
#endif

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
