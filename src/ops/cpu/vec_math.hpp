// Vectorised float32 math for the CPU kernels (AVX-512 when compiled in).
#pragma once
#include <cmath>

#if defined(__AVX512F__)
// GCC 12 flags the intrinsics' own _mm512_undefined_*() self-initialisation (GCC PR105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

namespace ovis::ops::cpu {

#if defined(__AVX512F__)
// e^x, relative error < 2 ulp over the float range; -inf -> 0, overflow -> inf, NaN stays NaN.
// x = n·ln2 + r with |r| <= ln2/2 (two-constant Cody-Waite), e^r by its degree-7 Taylor
// polynomial (truncation < 5e-9), then scaled by 2^n.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);  // operand order keeps NaN
  x = _mm512_min_ps(_mm512_set1_ps(88.8f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.4286068202862268e-06f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
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
#endif

}  // namespace ovis::ops::cpu
