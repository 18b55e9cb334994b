// Float row math outside the GEMMs (RowKernels), compiled once per ISA: the gated activations,
// softmax, the attention's score rows, bf16 rounding and 16-bit widening. Semantics are those of
// the "Row math" functions of kernels.hpp.
#include <math.h>

#include "ops/cpu/kernels/variant/vec_math.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

namespace {

// GELU-tanh's argument of the sigmoid: 2·√(2/π)·(x + 0.044715·x³).
constexpr float kGelu2K0 = 2 * 0.7978845608028654f, kGeluK1 = 0.044715f;

template <bool kGelu>
float sigmoid_arg(float v) {
  return kGelu ? kGelu2K0 * (v + kGeluK1 * v * v * v) : v;
}

#if defined(__AVX512F__)
template <bool kGelu>
__m512 sigmoid_arg(__m512 v) {
  if (!kGelu) return v;
  const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
  return _mm512_mul_ps(_mm512_set1_ps(kGelu2K0), _mm512_fmadd_ps(_mm512_set1_ps(kGeluK1), v3, v));
}
#elif defined(__AVX2__) && defined(__FMA__)
template <bool kGelu>
__m256 sigmoid_arg(__m256 v) {
  if (!kGelu) return v;
  const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
  return _mm256_mul_ps(_mm256_set1_ps(kGelu2K0), _mm256_fmadd_ps(_mm256_set1_ps(kGeluK1), v3, v));
}
#endif

template <bool kGelu>
void x_sigmoid_rows(const float* x, const float* u, float* o, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i < n; i += 16) {
    const __mmask16 k = n - i >= 16 ? __mmask16(0xffff) : tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
    __m512 r = x_sigmoid_ps(v, sigmoid_arg<kGelu>(v));
    if (u) r = _mm512_mul_ps(r, _mm512_maskz_loadu_ps(k, u + i));
    _mm512_mask_storeu_ps(o + i, k, r);
  }
#elif defined(__AVX2__) && defined(__FMA__)
  for (; i < n; i += 8) {
    const __m256i k = tail_mask8(n - i < 8 ? n - i : 8);
    const __m256 v = _mm256_maskload_ps(x + i, k);
    __m256 r = x_sigmoid_ps(v, sigmoid_arg<kGelu>(v));
    if (u) r = _mm256_mul_ps(r, _mm256_maskload_ps(u + i, k));
    _mm256_maskstore_ps(o + i, k, r);
  }
#endif
  for (; i < n; ++i) o[i] = x[i] / (1.0f + expf(-sigmoid_arg<kGelu>(x[i]))) * (u ? u[i] : 1.0f);
}

void x_sigmoid(bool gelu_tanh, const float* x, const float* u, float* o, int64_t n) {
  if (gelu_tanh)
    x_sigmoid_rows<true>(x, u, o, n);
  else
    x_sigmoid_rows<false>(x, u, o, n);
}

float max_scaled(const float* s, int64_t n, float scale) {
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
  for (; j < n; ++j) mx = mx < s[j] * scale ? s[j] * scale : mx;
  return mx;
}

void softmax_row(float* r, int64_t n) {
  const float mx = max_scaled(r, n, 1.0f);
  double s = 0;
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 vm = _mm512_set1_ps(mx);
  __m512d acc = _mm512_setzero_pd();
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(r + i), vm));
    _mm512_storeu_ps(r + i, e);
    acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
    acc = _mm512_add_pd(
        acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
  }
  s = _mm512_reduce_add_pd(acc);
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 vm = _mm256_set1_ps(mx);
  __m256d acc = _mm256_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(r + i), vm));
    _mm256_storeu_ps(r + i, e);
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double part[4];
  _mm256_store_pd(part, acc);
  s = (part[0] + part[1]) + (part[2] + part[3]);
#endif
  for (; i < n; ++i) {
    r[i] = expf(r[i] - mx);
    s += r[i];
  }
  const float inv = float(1.0 / s);
  for (i = 0; i < n; ++i) r[i] *= inv;
}

float exp_scaled(float* s, int64_t n, float scale, float mx, bool round_bf16) {
  float sum = 0;
#if defined(__AVX512F__)
  const __m512 sc = _mm512_set1_ps(scale), m = _mm512_set1_ps(mx);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 k = n - j >= 16 ? __mmask16(0xffff) : tail_mask(n - j);
    const __m512 e = exp_ps(_mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, s + j), sc, m));
    acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    _mm512_mask_storeu_ps(s + j, k, e);
  }
  sum = _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 sc = _mm256_set1_ps(scale), m = _mm256_set1_ps(mx);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j += 8) {
    const __m256i k = tail_mask8(n - j < 8 ? n - j : 8);
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_fmsub_ps(_mm256_maskload_ps(s + j, k), sc, m)),
                                   _mm256_castsi256_ps(k));
    acc = _mm256_add_ps(acc, e);
    _mm256_maskstore_ps(s + j, k, e);
  }
  sum = hsum_ps(acc);
#else
  for (int64_t j = 0; j < n; ++j) sum += (s[j] = expf(s[j] * scale - mx));
#endif
  if (round_bf16) round_to_bf16_f32(s, n, s);
  return sum;
}

float dot(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  s = _mm512_reduce_add_ps(acc);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8)
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  s = hsum_ps(acc);
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void key_scores(const float* q, const int64_t* qoff, const float* k, const int64_t* col,
                const int64_t* end, int64_t j, int64_t rows, int64_t d, float* s, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    if (j < end[r]) s[r * ld] = dot(q + qoff[r], k + col[r], d);
}

// y[x] += alpha·v[x] for x < n.
void axpy(float alpha, const float* v, float* y, int64_t n) {
  int64_t x = 0;
#if defined(__AVX512F__)
  const __m512 a = _mm512_set1_ps(alpha);
  for (; x + 16 <= n; x += 16)
    _mm512_storeu_ps(y + x, _mm512_fmadd_ps(a, _mm512_loadu_ps(v + x), _mm512_loadu_ps(y + x)));
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 a = _mm256_set1_ps(alpha);
  for (; x + 8 <= n; x += 8)
    _mm256_storeu_ps(y + x, _mm256_fmadd_ps(a, _mm256_loadu_ps(v + x), _mm256_loadu_ps(y + x)));
#endif
  for (; x < n; ++x) y[x] += alpha * v[x];
}

void value_accumulate(const float* v, const int64_t* col, const int64_t* end, int64_t j,
                      int64_t rows, int64_t d, const float* s, int64_t ld, float* acc,
                      int64_t ld_acc) {
  for (int64_t r = 0; r < rows; ++r)
    if (j < end[r]) axpy(s[r * ld], v + col[r], acc + r * ld_acc, d);
}

void round_bf16(const float* src, int64_t n, float* dst) {
  round_to_bf16_f32(src, n, dst);
}

void widen_16(const uint16_t* src, bool f16, int64_t n, float* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256((const __m256i*)(src + i));
    _mm512_storeu_ps(dst + i,
                     f16 ? _mm512_cvtph_ps(h)
                         : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
#elif defined(__AVX2__) && defined(__F16C__)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128((const __m128i*)(src + i));
    _mm256_storeu_ps(dst + i,
                     f16 ? _mm256_cvtph_ps(h)
                         : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)));
  }
#endif
  for (; i < n; ++i) dst[i] = f16 ? from_f16(src[i]) : from_bf16(src[i]);
}

}  // namespace

const RowKernels& row_kernels() {
  static const RowKernels k{x_sigmoid,  softmax_row,      max_scaled, exp_scaled,
                            key_scores, value_accumulate, round_bf16, widen_16};
  return k;
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
