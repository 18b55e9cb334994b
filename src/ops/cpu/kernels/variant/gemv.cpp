// GEMV for decode-sized M: y[m, n] = Σ_k x[m, k] w[n, k] (+ bias[n]), compiled once per ISA.
// Bandwidth bound: each weight row is streamed once for all (<= 4) rows of x. The rows of one
// or several weights sharing x (a group: q/k/v, gate/up) are cut into chunks of consecutive
// rows that the threads claim (parallel_chunks: one fork/join per group, no barrier waiting on
// a descheduled thread); R = 4 weight rows per step so four streams are in flight with M·R
// independent accumulators.
#include "ops/cpu/kernels/variant/common.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

namespace {

constexpr int kMaxRows = 4;

struct GemvArgs {
  const void* x;  // [M, K]: bf16 for the vdpbf16ps kernel, else f32
  const uint16_t* w;
  bool f16;
  const float* bias;
  float* y;
  int64_t M, N, K;
};

inline float bias_at(const GemvArgs& g, int64_t n) {
  return g.bias ? g.bias[n] : 0.0f;
}

#if defined(__AVX512F__) || defined(__AVX2__)
// Rows are 4 KiB pages apart at K = 2048, where the hardware streamers stop; fetching the same
// columns two row-steps (8 rows) ahead into L2 keeps DRAM busy (~+30% GB/s measured).
constexpr int64_t kPrefetchRows = 8;
inline void prefetch_ahead(const GemvArgs& g, int64_t row, int64_t k) {
  if (row + kPrefetchRows < g.N)
    _mm_prefetch((const char*)(g.w + (row + kPrefetchRows) * g.K + k), _MM_HINT_T1);
}
#endif

#if defined(__AVX512F__)
// 32 weights of a 16-bit row as two f32 vectors.
inline void widen32(const uint16_t* p, bool f16, __mmask32 mask, __m512& lo, __m512& hi) {
  const __m512i v = _mm512_maskz_loadu_epi16(mask, p);
  const __m256i a = _mm512_castsi512_si256(v), b = _mm512_extracti64x4_epi64(v, 1);
  if (f16) {
    lo = _mm512_cvtph_ps(a);
    hi = _mm512_cvtph_ps(b);
  } else {
    lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(a), 16));
    hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
  }
}

// f32 activations, 16-bit weights widened to f32.
template <int M, int R>
inline void gemv_f32_step(const GemvArgs& g, int64_t n) {
  const float* x = static_cast<const float*>(g.x);
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < g.K; k += 32) {
    const int64_t left = g.K - k;
    const __mmask32 mask = left >= 32 ? __mmask32(~0u) : __mmask32((1u << left) - 1);
    __m512 xl[M], xh[M];
    for (int m = 0; m < M; ++m) {
      xl[m] = _mm512_maskz_loadu_ps(__mmask16(mask), x + m * g.K + k);
      xh[m] = _mm512_maskz_loadu_ps(__mmask16(mask >> 16), x + m * g.K + k + 16);
    }
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(g, n + r, k);
      __m512 lo, hi;
      widen32(g.w + (n + r) * g.K + k, g.f16, mask, lo, hi);
      for (int m = 0; m < M; ++m)
        acc[r][m] = _mm512_fmadd_ps(xh[m], hi, _mm512_fmadd_ps(xl[m], lo, acc[r][m]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      g.y[m * g.N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + bias_at(g, n + r);
}

#elif defined(__AVX2__)
// 8 weights of a 16-bit row (n <= 8 of them, the rest 0) as f32.
inline __m256 widen8(const uint16_t* p, bool f16, int64_t n) {
  __m128i h;
  if (n >= 8) {
    h = _mm_loadu_si128((const __m128i*)p);
  } else {
    alignas(16) uint16_t tmp[8] = {};
    for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
    h = _mm_load_si128((const __m128i*)tmp);
  }
  if (f16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline __m256 load8(const float* p, int64_t n) {
  if (n >= 8) return _mm256_loadu_ps(p);
  alignas(32) float tmp[8] = {};
  for (int64_t i = 0; i < n; ++i) tmp[i] = p[i];
  return _mm256_load_ps(tmp);
}
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int M, int R>
inline void gemv_f32_step(const GemvArgs& g, int64_t n) {
  const float* x = static_cast<const float*>(g.x);
  __m256 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm256_setzero_ps();
  for (int64_t k = 0; k < g.K; k += 16) {
    const int64_t left = g.K - k;
    __m256 xl[M], xh[M];
    for (int m = 0; m < M; ++m) {
      xl[m] = load8(x + m * g.K + k, left);
      xh[m] = left > 8 ? load8(x + m * g.K + k + 8, left - 8) : _mm256_setzero_ps();
    }
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(g, n + r, k);
      const uint16_t* wr = g.w + (n + r) * g.K + k;
      const __m256 lo = widen8(wr, g.f16, left);
      const __m256 hi = left > 8 ? widen8(wr + 8, g.f16, left - 8) : _mm256_setzero_ps();
      for (int m = 0; m < M; ++m)
        acc[r][m] = _mm256_fmadd_ps(xh[m], hi, _mm256_fmadd_ps(xl[m], lo, acc[r][m]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) g.y[m * g.N + n + r] = hsum8(acc[r][m]) + bias_at(g, n + r);
}

#else
template <int M, int R>
inline void gemv_f32_step(const GemvArgs& g, int64_t n) {
  const float* x = static_cast<const float*>(g.x);
  for (int r = 0; r < R; ++r) {
    const uint16_t* wr = g.w + (n + r) * g.K;
    for (int m = 0; m < M; ++m) {
      float s = 0;
      for (int64_t k = 0; k < g.K; ++k)
        s += x[m * g.K + k] * (g.f16 ? from_f16(wr[k]) : from_bf16(wr[k]));
      g.y[m * g.N + n + r] = s + bias_at(g, n + r);
    }
  }
}
#endif

#if defined(__AVX512BF16__)
// bf16 activations and weights, fp32 accumulation.
template <int M, int R>
inline void gemv_bf16_step(const GemvArgs& g, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(g.x);
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < g.K; k += 32) {
    const int64_t left = g.K - k;
    const __mmask32 mask = left >= 32 ? __mmask32(~0u) : __mmask32((1u << left) - 1);
    __m512bh xv[M];
    for (int m = 0; m < M; ++m) xv[m] = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + m * g.K + k);
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(g, n + r, k);
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, g.w + (n + r) * g.K + k);
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], xv[m], wv);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      g.y[m * g.N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + bias_at(g, n + r);
}
#endif

template <bool kBf16, int M>
void gemv_range(const GemvArgs& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
#if defined(__AVX512BF16__)
  if constexpr (kBf16) {
    for (; n + 4 <= n1; n += 4) gemv_bf16_step<M, 4>(g, n);
    for (; n < n1; ++n) gemv_bf16_step<M, 1>(g, n);
    return;
  }
#endif
  for (; n + 4 <= n1; n += 4) gemv_f32_step<M, 4>(g, n);
  for (; n < n1; ++n) gemv_f32_step<M, 1>(g, n);
}

template <bool kBf16>
void gemv_range_m(const GemvArgs& g, int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1:
      return gemv_range<kBf16, 1>(g, n0, n1);
    case 2:
      return gemv_range<kBf16, 2>(g, n0, n1);
    case 3:
      return gemv_range<kBf16, 3>(g, n0, n1);
    default:
      return gemv_range<kBf16, 4>(g, n0, n1);
  }
}

// The rows of every output of a group, in chunks of whole 16-row blocks claimed one at a time
// by the threads of parallel_chunks (work_pool.hpp). x is shared by all outputs.
struct GroupTask {
  const void* x;  // [M, K]: bf16 for the vdpbf16ps kernel, else f32
  bool f16;
  int64_t M, K, rows_per_chunk;
  const GemvOut* outs;
  int count;
  int64_t first_chunk[kMaxGroup + 1];  // chunks of output j: [first_chunk[j], first_chunk[j + 1])
};

template <bool kBf16>
void run_chunk(void* ctx, int64_t chunk) {
  const GroupTask& t = *static_cast<const GroupTask*>(ctx);
  int j = 0;
  while (chunk >= t.first_chunk[j + 1]) ++j;
  const GemvOut& o = t.outs[j];
  const int64_t n0 = (chunk - t.first_chunk[j]) * t.rows_per_chunk;
  const GemvArgs g{t.x, o.w, t.f16, o.bias, o.y, t.M, o.n, t.K};
  gemv_range_m<kBf16>(g, n0, imin(o.n, n0 + t.rows_per_chunk));
}

// Chunks of ~256 KiB of weights (rows are page-sized at K = 2048, so the prefetch stays within
// a chunk's stream), at least four per thread so a late thread leaves little behind.
int64_t rows_per_chunk(int64_t rows, int64_t K, int threads) {
  int64_t r = imax(16, (int64_t(1) << 17) / imax(K, 1) / 16 * 16);
  const int64_t balanced = imax(16, rows / (4 * int64_t(threads)) / 16 * 16);
  return imin(r, balanced);
}

// kBf16: x and w are bf16 (vdpbf16ps); else x is f32 and w bf16/f16. M <= kMaxRows.
template <bool kBf16>
void gemv_group_rows(const void* x, bool f16, int64_t M, int64_t K, const GemvOut* outs, int count,
                     int threads) {
  GroupTask t{x, f16, M, K, 0, outs, count, {}};
  int64_t rows = 0;
  for (int j = 0; j < count; ++j) rows += outs[j].n;
  // Below ~256 KiB of weights a second thread costs more than it streams.
  if (rows * K < (int64_t(1) << 17)) threads = 1;
  t.rows_per_chunk = rows_per_chunk(rows, K, threads);
  t.first_chunk[0] = 0;
  for (int j = 0; j < count; ++j)
    t.first_chunk[j + 1] = t.first_chunk[j] + ceil_div(outs[j].n, t.rows_per_chunk);
  parallel_chunks(threads, t.first_chunk[count], run_chunk<kBf16>, &t);
}

thread_local ThreadScratch t_x;

void gemv_group(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count, bool bf16,
                bool f16, int threads) {
  const int T = resolve_threads(threads);
  for (int64_t m0 = 0; m0 < M; m0 += kMaxRows) {
    const int64_t mm = imin(kMaxRows, M - m0);
    GemvOut o[kMaxGroup];
    for (int j = 0; j < count; ++j) {
      o[j] = outs[j];
      o[j].y = outs[j].y + m0 * outs[j].n;
    }
    const float* xm = x + m0 * K;
    if (!bf16) {
      gemv_group_rows<false>(xm, f16, mm, K, o, count, T);
      continue;
    }
#if defined(__AVX512BF16__)
    uint16_t* xb = static_cast<uint16_t*>(t_x.get(size_t(mm * K) * sizeof(uint16_t)));
    convert_to_bf16(xm, mm * K, xb);
    gemv_group_rows<true>(xb, false, mm, K, o, count, T);
#else
    // Same products without the dot-product instruction: bf16-rounded x, f32 math.
    float* xr = static_cast<float*>(t_x.get(size_t(mm * K) * sizeof(float)));
    round_to_bf16_f32(xm, mm * K, xr);
    gemv_group_rows<false>(xr, false, mm, K, o, count, T);
#endif
  }
}

}  // namespace

void gemv_w16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w, bool w_f16,
              const float* bias, float* y, int threads) {
  if (M <= 0 || N <= 0) return;
  const GemvOut o{w, bias, y, N};
  gemv_group(M, K, x, &o, 1, /*bf16=*/false, w_f16, threads);
}

void gemv_bf16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w,
               const float* bias, float* y, int threads) {
  if (M <= 0 || N <= 0) return;
  const GemvOut o{w, bias, y, N};
  gemv_group(M, K, x, &o, 1, /*bf16=*/true, false, threads);
}

void gemv_group_bf16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                     int threads) {
  if (M <= 0 || count <= 0) return;
  gemv_group(M, K, x, outs, count, /*bf16=*/true, false, threads);
}

void gemv_group_w16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                    bool w_f16, int threads) {
  if (M <= 0 || count <= 0) return;
  gemv_group(M, K, x, outs, count, /*bf16=*/false, w_f16, threads);
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
