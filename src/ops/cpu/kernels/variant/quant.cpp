// Kernels for Q8_0 / Q4_K weights (ggml layouts, core/quant_blocks.hpp) against activations
// quantised per 32-element block (ActBlocks), this variant's copy. The code path follows the
// variant's compiler flags:
//   level 2: AVX-512 F/BW/VL + VNNI (the avx512bf16 variant: every AVX512-BF16 CPU has VNNI):
//            vpdpbusd dot products, GEMV and a panel GEMM;
//   level 1: AVX2 + FMA + F16C (the avx2 and avx512 variants): Q4_K in the same panels with a
//            vpmaddubsw tile (GEMV and GEMM); Q8_0 on ggml's rows, a vpmaddubsw GEMV and a
//            vpmaddwd GEMM on int16 panels widened per call;
//   level 0: portable scalar code (generic).
// Everything here has internal linkage except quant_kernels() (see variant_table.hpp). Integer
// dot products are exact, so the levels differ only in the order of the float sums.
#include <cmath>

#include "ops/cpu/kernels/variant/common.hpp"

#if defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define OVIS_QISA_LEVEL 2
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define OVIS_QISA_LEVEL 1
#else
#define OVIS_QISA_LEVEL 0
#endif

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

namespace {

constexpr int kBlk = 32;           // activation / Q8_0 block
constexpr int64_t kQ8Bytes = 34;   // BlockQ8_0
constexpr int64_t kQ4Bytes = 144;  // BlockQ4_K (256 values)

inline int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

inline float half_to_float(uint16_t h) {
#if OVIS_QISA_LEVEL >= 1
  return _cvtsh_ss(h);
#else
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    const float f = std::ldexp(float(mant), -24);
    std::memcpy(&u, &f, 4);
    u |= sign;
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The 8 6-bit scales and mins of a Q4_K super-block (bytes 4..15 of the block).
inline void q4k_unpack(const uint8_t* packed, uint8_t sc[8], uint8_t mn[8]) {
  uint32_t u[3];
  std::memcpy(u, packed, 12);
  const uint32_t m6 = 0x3f3f3f3f, m4 = 0x0f0f0f0f, m2 = 0x03030303;
  const uint32_t s_lo = u[0] & m6, m_lo = u[1] & m6;
  const uint32_t s_hi = (u[2] & m4) | (((u[0] >> 6) & m2) << 4);
  const uint32_t m_hi = ((u[2] >> 4) & m4) | (((u[1] >> 6) & m2) << 4);
  std::memcpy(sc, &s_lo, 4);
  std::memcpy(sc + 4, &s_hi, 4);
  std::memcpy(mn, &m_lo, 4);
  std::memcpy(mn + 4, &m_hi, 4);
}

// ---- activations ----

void quantize_act(const float* x, int64_t K, int64_t m0, int64_t m1, int8_t* q, float* d,
                  int32_t* s, float* ds) {
  const int64_t nb = K / kBlk;
  for (int64_t m = m0; m < m1; ++m) {
    for (int64_t b = 0; b < nb; ++b) {
      const float* v = x + m * K + b * kBlk;
      float amax = 0;
      for (int i = 0; i < kBlk; ++i) {
        const float a = std::fabs(v[i]);
        amax = a > amax ? a : amax;
      }
      const float dd = amax / 127.0f, id = dd > 0 ? 1.0f / dd : 0.0f;
      int8_t* o = q + m * K + b * kBlk;
      int32_t sum = 0;
      for (int i = 0; i < kBlk; ++i) {
        const int32_t qi = int32_t(std::nearbyint(v[i] * id));
        o[i] = int8_t(qi);
        sum += qi;
      }
      d[m * nb + b] = dd;
      s[m * nb + b] = sum;
      ds[m * nb + b] = dd * float(sum);
    }
  }
}

#if OVIS_QISA_LEVEL >= 1
// ---- 256-bit helpers ----

// acc + Σ over 4-byte groups of u8 · s8 into int32 lanes.
inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if OVIS_QISA_LEVEL >= 2
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  const __m256i p16 = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
#endif
}

// Eight vectors of int32 lanes -> one vector of their eight totals (lane j = Σ v[j]).
inline __m256i reduce8(const __m256i v[8]) {
  const __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                          _mm256_permute2x128_si256(u0, u1, 0x31));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// Σ over one Q8_0 block of w·x (signs moved onto x so that |w| is the unsigned operand).
inline __m256i q8_block_dot(const uint8_t* blk, const int8_t* x) {
  const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
  return dot_u8s8(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(xv, w));
}
#endif

// ---- GEMV ----

void gemv_q8_0(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
               float* y, int64_t ldy) {
  const int64_t K = a.K, nb = K / kBlk;
  const int64_t row_bytes = nb * kQ8Bytes;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = w + n * row_bytes;
    for (int64_t m = 0; m < a.M; ++m) {
      const int8_t* xq = a.q + m * K;
      const float* xd = a.d + m * nb;
      float total = 0;
      int64_t b = 0;
#if OVIS_QISA_LEVEL >= 1
      __m256 acc = _mm256_setzero_ps();
      for (; b + 8 <= nb; b += 8) {
        __m256i dots[8];
        for (int j = 0; j < 8; ++j)
          dots[j] = q8_block_dot(wr + (b + j) * kQ8Bytes, xq + (b + j) * kBlk);
        const __m128i h = _mm_setr_epi16(
            short(load_u16(wr + (b + 0) * kQ8Bytes)), short(load_u16(wr + (b + 1) * kQ8Bytes)),
            short(load_u16(wr + (b + 2) * kQ8Bytes)), short(load_u16(wr + (b + 3) * kQ8Bytes)),
            short(load_u16(wr + (b + 4) * kQ8Bytes)), short(load_u16(wr + (b + 5) * kQ8Bytes)),
            short(load_u16(wr + (b + 6) * kQ8Bytes)), short(load_u16(wr + (b + 7) * kQ8Bytes)));
        const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(xd + b));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(dots)), scale, acc);
      }
      total = hsum(acc);
#endif
      for (; b < nb; ++b) {
        const uint8_t* blk = wr + b * kQ8Bytes;
        // Read as int8 (not a cast of uint8: GCC 12 turns that cast into an unsigned×signed
        // VNNI dot product and loses the sign).
        const int8_t* wq = reinterpret_cast<const int8_t*>(blk + 2);
        int32_t dot = 0;
        for (int i = 0; i < kBlk; ++i) dot += int32_t(wq[i]) * int32_t(xq[b * kBlk + i]);
        total += half_to_float(load_u16(blk)) * xd[b] * float(dot);
      }
      y[m * ldy + n] = total + (bias ? bias[n] : 0.0f);
    }
  }
}

void gemv_q4_k(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
               float* y, int64_t ldy) {
  const int64_t K = a.K, nb = K / kBlk, nsb = K / 256;
  const int64_t row_bytes = nsb * kQ4Bytes;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = w + n * row_bytes;
    for (int64_t m = 0; m < a.M; ++m) {
      const int8_t* xq = a.q + m * K;
      const float* xd = a.d + m * nb;
      const float* xds = a.ds + m * nb;
      float total = 0;
#if OVIS_QISA_LEVEL >= 1
      __m256 acc = _mm256_setzero_ps(), macc = _mm256_setzero_ps();
      const __m256i low4 = _mm256_set1_epi8(0x0f);
      for (int64_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* blk = wr + sb * kQ4Bytes;
        const int8_t* xs = xq + sb * 256;
        __m256i dots[8];
        for (int c = 0; c < 4; ++c) {
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 + 32 * c));
          const __m256i lo = _mm256_and_si256(q, low4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
          dots[2 * c] = dot_u8s8(_mm256_setzero_si256(), lo,
                                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 64 * c)));
          dots[2 * c + 1] =
              dot_u8s8(_mm256_setzero_si256(), hi,
                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + 64 * c + 32)));
        }
        uint8_t sc[8], mn[8];
        q4k_unpack(blk + 4, sc, mn);
        int64_t scv, mnv;
        std::memcpy(&scv, sc, 8);
        std::memcpy(&mnv, mn, 8);
        const __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(scv)));
        const __m256 mnf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(mnv)));
        const __m256 d = _mm256_set1_ps(half_to_float(load_u16(blk)));
        const __m256 dmin = _mm256_set1_ps(half_to_float(load_u16(blk + 2)));
        const __m256 scale = _mm256_mul_ps(_mm256_mul_ps(scf, d), _mm256_loadu_ps(xd + sb * 8));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(reduce8(dots)), scale, acc);
        macc = _mm256_fmadd_ps(_mm256_mul_ps(mnf, dmin), _mm256_loadu_ps(xds + sb * 8), macc);
      }
      total = hsum(_mm256_sub_ps(acc, macc));
#else
      for (int64_t sb = 0; sb < nsb; ++sb) {
        const uint8_t* blk = wr + sb * kQ4Bytes;
        const float d = half_to_float(load_u16(blk)), dmin = half_to_float(load_u16(blk + 2));
        uint8_t sc[8], mn[8];
        q4k_unpack(blk + 4, sc, mn);
        for (int j = 0; j < 8; ++j) {
          const uint8_t* q = blk + 16 + 32 * (j / 2);
          const int shift = (j % 2) * 4;
          const int8_t* xs = xq + sb * 256 + j * kBlk;
          int32_t dot = 0;
          for (int i = 0; i < kBlk; ++i) dot += int32_t((q[i] >> shift) & 0x0f) * int32_t(xs[i]);
          const int64_t b = sb * 8 + j;
          total += d * float(sc[j]) * xd[b] * float(dot) - dmin * float(mn[j]) * xds[b];
        }
      }
#endif
      y[m * ldy + n] = total + (bias ? bias[n] : 0.0f);
    }
  }
}

#if OVIS_QISA_LEVEL >= 1
// Q4_K panels (the layout is described with the VNNI level's panels below); the AVX2 level reads
// them too.
constexpr int64_t kPanel = 16;
constexpr int64_t kQ4Quants = 2048, kQ4Super = kQ4Quants + 64 + 256;
inline int64_t q4_panel_bytes(int64_t K) {
  return K / 256 * kQ4Super;
}

// The nibble unpacking leaves too few loads in flight for the hardware prefetcher alone (VNNI
// q4_k decode 25 -> 31..34 tok/s), so the Q4_K tiles prefetch one super-block ahead, an eighth
// of a super-block (nibbles and the scale block alike) per 32-block b, so that the scales a
// super-block starts with are in flight in time.
inline void prefetch_q4_ahead(const uint8_t* panel, int64_t b) {
  constexpr int64_t kStep = kQ4Super / 8;
  const uintptr_t ahead =
      reinterpret_cast<uintptr_t>(panel + (b / 8 + 1) * kQ4Super + (b % 8) * kStep);
  for (uintptr_t line = ahead & ~uintptr_t(63); line < ahead + kStep; line += 64)
    _mm_prefetch(reinterpret_cast<const char*>(line), _MM_HINT_T0);
}

// The GEMM scratch (any alignment) rounded up to 64 bytes.
inline uint8_t* align64(void* scratch) {
  return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
}

void pack_q4_k_panel(const uint8_t* w, int64_t N, int64_t K, int64_t p, uint8_t* out) {
  const int64_t nsb = K / 256, row_bytes = nsb * kQ4Bytes;
  for (int64_t sb = 0; sb < nsb; ++sb) {
    uint8_t* q = out + sb * kQ4Super;
    uint16_t* d = reinterpret_cast<uint16_t*>(q + kQ4Quants);
    uint8_t* sc = q + kQ4Quants + 64;
    uint8_t* mn = sc + 128;
    for (int64_t c = 0; c < kPanel; ++c) {
      const int64_t n = p * kPanel + c;
      uint8_t s8[8] = {}, m8[8] = {};
      const uint8_t* blk = n < N ? w + n * row_bytes + sb * kQ4Bytes : nullptr;
      d[c] = blk ? load_u16(blk) : 0;
      d[16 + c] = blk ? load_u16(blk + 2) : 0;
      if (blk) q4k_unpack(blk + 4, s8, m8);
      for (int j = 0; j < 8; ++j) {
        sc[j * 16 + c] = s8[j];
        mn[j * 16 + c] = m8[j];
        const uint8_t* src = blk ? blk + 16 + 32 * (j / 2) : nullptr;
        const int shift = (j % 2) * 4;
        for (int i = 0; i < 4; ++i)
          for (int e = 0; e < 4; ++e) {
            const uint8_t lo = src ? (src[4 * i + e] >> shift) & 0x0f : 0;
            const uint8_t hi = src ? (src[4 * (i + 4) + e] >> shift) & 0x0f : 0;
            q[j * 256 + i * 64 + c * 4 + e] = uint8_t(lo | (hi << 4));
          }
      }
    }
  }
}
#endif

#if OVIS_QISA_LEVEL == 1
// ---- int16 panels (AVX2 without VNNI): the Q8_0 GEMM ----
// vpmaddubsw would saturate on u8 x s8 pairs of Q8_0 weights and int8 activations, so the GEMM
// multiplies int16 pairs with vpmaddwd (exact, 16 products per instruction; f32 FMA does 8). A
// column chunk of the weight is widened per call into panels of 16 columns (a resident int16
// copy would double a quantized model's memory): per 32-block, 16 k pairs x 16 columns of
// (w[c][2q], w[c][2q+1]) as int32 lanes, then the 16 column scales d as f32. The integer block
// products are those of every other level and the float steps per block are those of the VNNI
// tile, in the same order.
constexpr int64_t kWideCols = 16;
constexpr int64_t kWideVals = 16 * kWideCols * 4;          // one block's int16 pairs
constexpr int64_t kWideBlock = kWideVals + kWideCols * 4;  // then the f32 scales
inline int64_t wide_panel_bytes(int64_t K) {
  return K / kBlk * kWideBlock;
}
// Activation rows widened to int16 per row block: at most this many bytes (L2-sized).
constexpr int64_t kWideRowBytes = 256 << 10, kWideMaxRows = 96;
inline int64_t wide_rows(int64_t K) {
  const int64_t rows = kWideRowBytes / (2 * K) / 3 * 3;
  return rows < 3 ? 3 : rows > kWideMaxRows ? kWideMaxRows : rows;
}

// r[i] = row i of an 8 x 8 matrix of 32-bit elements; on return r[i] = column i.
inline void transpose8x8(__m256i r[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // u[4g + j] holds, in 128-bit lane L, column 4L + j of rows 4g..4g+3.
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
    r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
  }
}

// Rows [16p, 16p + 16) of w (Q8_0 rows of K) as one int16 panel at `out`.
void pack_wide_panel(const uint8_t* w, int64_t N, int64_t K, int64_t p, uint8_t* out) {
  const int64_t nb = K / kBlk, row_bytes = nb * kQ8Bytes;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* blk = out + b * kWideBlock;
    float* scale = reinterpret_cast<float*>(blk + kWideVals);
    for (int64_t g = 0; g < kWideCols; g += 8) {
      __m256i lo[8], hi[8];
      for (int64_t c = 0; c < 8; ++c) {
        const int64_t n = p * kWideCols + g + c;
        if (n >= N) {
          lo[c] = hi[c] = _mm256_setzero_si256();
          scale[g + c] = 0;
          continue;
        }
        // The block's 32 values as int16: k pairs 0-7 in lo, 8-15 in hi.
        const uint8_t* v = w + n * row_bytes + b * kQ8Bytes;
        lo[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 2)));
        hi[c] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + 18)));
        scale[g + c] = half_to_float(load_u16(v));
      }
      transpose8x8(lo);
      transpose8x8(hi);
      for (int q = 0; q < 8; ++q) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(blk + q * 64 + g * 4), lo[q]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(blk + (q + 8) * 64 + g * 4), hi[q]);
      }
    }
  }
}

// Rows [m0, m0 + R) of y x one panel (16 columns from column n, ncols of them valid); xs holds
// those rows widened to int16 (row r at xs + r·K).
template <int R>
inline void wide_tile(const ActBlocks& a, const int16_t* xs, int64_t m0, const uint8_t* panel,
                      int64_t n, int64_t ncols, const float* bias, float* y, int64_t ldy) {
  const int64_t K = a.K, nb = K / kBlk;
  __m256 c0[R], c1[R];
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = panel + b * kWideBlock;
    __m256i i0[R], i1[R];
    for (int r = 0; r < R; ++r) i0[r] = i1[r] = _mm256_setzero_si256();
#pragma GCC unroll 16
    for (int q = 0; q < 16; ++q) {
      const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + q * 64));
      const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(blk + q * 64 + 32));
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, xs + r * K + b * kBlk + 2 * q, 4);
        const __m256i xb = _mm256_set1_epi32(pair);
        i0[r] = _mm256_add_epi32(i0[r], _mm256_madd_epi16(w0, xb));
        i1[r] = _mm256_add_epi32(i1[r], _mm256_madd_epi16(w1, xb));
        keep_in_register(i0[r], i1[r]);
      }
    }
    const float* scale = reinterpret_cast<const float*>(blk + kWideVals);
    const __m256 s0 = _mm256_load_ps(scale), s1 = _mm256_load_ps(scale + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 dx = _mm256_set1_ps(a.d[(m0 + r) * nb + b]);
      c0[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0[r]), _mm256_mul_ps(s0, dx), c0[r]);
      c1[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1[r]), _mm256_mul_ps(s1, dx), c1[r]);
    }
  }
  if (ncols == kWideCols) {
    const __m256 b0 = bias ? _mm256_loadu_ps(bias + n) : _mm256_setzero_ps();
    const __m256 b1 = bias ? _mm256_loadu_ps(bias + n + 8) : _mm256_setzero_ps();
    for (int r = 0; r < R; ++r) {
      float* yr = y + (m0 + r) * ldy + n;
      _mm256_storeu_ps(yr, _mm256_add_ps(c0[r], b0));
      _mm256_storeu_ps(yr + 8, _mm256_add_ps(c1[r], b1));
    }
    return;
  }
  for (int r = 0; r < R; ++r) {
    alignas(32) float tmp[kWideCols];
    _mm256_store_ps(tmp, c0[r]);
    _mm256_store_ps(tmp + 8, c1[r]);
    float* yr = y + (m0 + r) * ldy + n;
    for (int64_t j = 0; j < ncols; ++j) yr[j] = tmp[j] + (bias ? bias[n + j] : 0.0f);
  }
}

void wide_rows_pass(const ActBlocks& a, const int16_t* xs, int64_t mb, int64_t me,
                    const uint8_t* panels, int64_t n0, int64_t n1, const float* bias, float* y,
                    int64_t ldy) {
  const int64_t bytes = wide_panel_bytes(a.K), K = a.K;
  for (int64_t n = n0; n < n1; n += kWideCols) {
    const uint8_t* panel = panels + (n - n0) / kWideCols * bytes;
    const int64_t ncols = min64(kWideCols, n1 - n);
    int64_t m = mb;
    for (; m + 3 <= me; m += 3)
      wide_tile<3>(a, xs + (m - mb) * K, m, panel, n, ncols, bias, y, ldy);
    if (me - m == 2) wide_tile<2>(a, xs + (m - mb) * K, m, panel, n, ncols, bias, y, ldy);
    if (me - m == 1) wide_tile<1>(a, xs + (m - mb) * K, m, panel, n, ncols, bias, y, ldy);
  }
}

// Q8_0 rows: columns [n0, n1) (n0 a multiple of 16) widened into panels at `panels`, then
// multiplied with the activation rows, widened a row block at a time.
void gemm_rows_q8_0(const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1, const float* bias,
                    float* y, int64_t ldy, uint8_t* panels) {
  const int64_t K = a.K, N = ldy;
  const int64_t npanels = (n1 - n0 + kWideCols - 1) / kWideCols;
  for (int64_t p = 0; p < npanels; ++p)
    pack_wide_panel(w, N, K, n0 / kWideCols + p, panels + p * wide_panel_bytes(K));
  int16_t* xs = reinterpret_cast<int16_t*>(panels + npanels * wide_panel_bytes(K));
  const int64_t rows = wide_rows(K);
  for (int64_t mb = 0; mb < a.M; mb += rows) {
    const int64_t me = min64(a.M, mb + rows);
    for (int64_t m = mb; m < me; ++m)
      for (int64_t k = 0; k < K; k += 16)
        _mm256_store_si256(reinterpret_cast<__m256i*>(xs + (m - mb) * K + k),
                           _mm256_cvtepi8_epi16(
                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(a.q + m * K + k))));
    wide_rows_pass(a, xs, mb, me, panels, n0, n1, bias, y, ldy);
  }
}
#endif

#if OVIS_QISA_LEVEL == 1
// ---- Q4_K panels (AVX2 without VNNI): decode and GEMM ----
// The VNNI level's Q4_K panels, 8 rows (one 32-byte half of each 64-byte group) at a time. The
// nibbles are unsigned and at most 15, so vpmaddubsw against the int8 activations cannot
// saturate (|pair| <= 2·15·127) and a block's 8 groups add up exactly in int16 (<= 16·15·127 =
// 30480) before one vpmaddwd widens them: the block products of every level, then the VNNI
// tile's float steps in the same order, so rows equal the VNNI level's. The rows' bytes are read
// once per row tile with no horizontal sums (the GEMV on ggml rows needs ~1.6x the instructions).
// Q8_0 keeps ggml's rows on this level (its signed weights would saturate vpmaddubsw).

int64_t packed_bytes(bool q4, int64_t N, int64_t K) {
  return q4 ? (N + kPanel - 1) / kPanel * q4_panel_bytes(K) : 0;
}

// packed_bytes() is 0 for Q8_0 here, so a Q8_0 panel call is a dispatcher bug.
[[noreturn]] void no_q8_panels() {
  std::fprintf(stderr, "internal error: Q8_0 panels requested on the AVX2 level\n");
  std::abort();
}

void pack_panels(bool q4, const uint8_t* w, int64_t N, int64_t K, int64_t p0, int64_t p1,
                 uint8_t* dst) {
  if (!q4) no_q8_panels();
  for (int64_t p = p0; p < p1; ++p) pack_q4_k_panel(w, N, K, p, dst + (p - p0) * q4_panel_bytes(K));
}

// Rows [m0, m0 + MR) x the 8·H columns of halves [h0, h0 + H) of one panel, into c. Up to two
// rows take both halves in one pass (whole cache lines, prefetched a super-block ahead as on
// the VNNI level); more rows take one half per pass (registers).
template <int MR, int H>
inline void q4_panel_pass(const ActBlocks& a, const uint8_t* panel, int h0, int64_t m0,
                          __m256 c[H][MR]) {
  const int64_t K = a.K, nb = K / kBlk;
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const int8_t* xq[MR];
  for (int m = 0; m < MR; ++m) xq[m] = a.q + (m0 + m) * K;
  for (int hh = 0; hh < H; ++hh)
    for (int m = 0; m < MR; ++m) c[hh][m] = _mm256_setzero_ps();
  __m256 d[H], dmin[H];
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* sb = panel + (b / 8) * kQ4Super;
    const uint8_t* s = sb + kQ4Quants;
    if (h0 == 0) prefetch_q4_ahead(panel, b);
    if (b % 8 == 0)
      for (int hh = 0; hh < H; ++hh) {
        const int h = h0 + hh;
        d[hh] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(s + 16 * h)));
        dmin[hh] =
            _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(s + 32 + 16 * h)));
      }
    const uint8_t* q = sb + (b % 8) * 256 + 32 * h0;
    __m256i acc[H][MR];
    for (int hh = 0; hh < H; ++hh)
      for (int m = 0; m < MR; ++m) acc[hh][m] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      __m256i xb[MR];
      for (int m = 0; m < MR; ++m) {
        int32_t xv;
        std::memcpy(&xv, xq[m] + b * kBlk + 4 * g, 4);
        xb[m] = _mm256_set1_epi32(xv);
      }
      for (int hh = 0; hh < H; ++hh) {
        const __m256i bytes =
            _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 64 * (g % 4) + 32 * hh));
        const __m256i v = _mm256_and_si256(g < 4 ? bytes : _mm256_srli_epi16(bytes, 4), low4);
        for (int m = 0; m < MR; ++m)
          acc[hh][m] = _mm256_add_epi16(acc[hh][m], _mm256_maddubs_epi16(v, xb[m]));
        for (int m = 0; m < MR; ++m) keep_in_register(acc[hh][m]);
      }
    }
    for (int hh = 0; hh < H; ++hh) {
      const uint8_t* sc = s + 64 + 16 * (b % 8) + 8 * (h0 + hh);
      const __m256 scale = _mm256_mul_ps(
          d[hh], _mm256_cvtepi32_ps(
                     _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc)))));
      const __m256 coef = _mm256_mul_ps(
          dmin[hh], _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
                        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc + 128)))));
      for (int m = 0; m < MR; ++m) {
        const __m256i dot = _mm256_madd_epi16(acc[hh][m], _mm256_set1_epi16(1));
        const __m256 dx = _mm256_set1_ps(a.d[(m0 + m) * nb + b]);
        c[hh][m] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(scale, dx), c[hh][m]);
        c[hh][m] = _mm256_fnmadd_ps(coef, _mm256_set1_ps(a.ds[(m0 + m) * nb + b]), c[hh][m]);
      }
    }
  }
}

// Rows [m0, m0 + MR) x one panel: columns [n, n + ncols) of y, ncols <= 16.
template <int MR>
inline void q4_panel_tile(const ActBlocks& a, const uint8_t* panel, int64_t m0, int64_t n,
                          int64_t ncols, const float* bias, float* y, int64_t ldy) {
  constexpr int H = MR <= 2 ? 2 : 1;
  for (int h0 = 0; h0 < 2 && 8 * h0 < ncols; h0 += H) {
    __m256 c[H][MR];
    q4_panel_pass<MR, H>(a, panel, h0, m0, c);
    for (int hh = 0; hh < H; ++hh) {
      const int64_t col = n + 8 * (h0 + hh), cols = min64(8, n + ncols - col);
      for (int m = 0; m < MR && cols > 0; ++m) {
        float* yr = y + (m0 + m) * ldy + col;
        if (cols == 8) {
          _mm256_storeu_ps(yr,
                           bias ? _mm256_add_ps(c[hh][m], _mm256_loadu_ps(bias + col)) : c[hh][m]);
          continue;
        }
        alignas(32) float tmp[8];
        _mm256_store_ps(tmp, c[hh][m]);
        for (int64_t j = 0; j < cols; ++j) yr[j] = tmp[j] + (bias ? bias[col + j] : 0.0f);
      }
    }
  }
}

// Columns [n0, n1) of y [M][N] for every row; `panels` is the Q4_K panel holding column n0 (n0
// a multiple of 16), the later ones following it.
void run_q4_panels(const ActBlocks& a, const uint8_t* panels, int64_t n0, int64_t n1, int64_t N,
                   const float* bias, float* y) {
  const int64_t bytes = q4_panel_bytes(a.K);
  // Rows in blocks that stay in L2 while every panel passes over them.
  constexpr int64_t kRowBlock = 128;
  for (int64_t mb = 0; mb < a.M; mb += kRowBlock) {
    const int64_t me = min64(a.M, mb + kRowBlock);
    for (int64_t n = n0; n < n1; n += kPanel) {
      const uint8_t* panel = panels + (n - n0) / kPanel * bytes;
      const int64_t ncols = min64(kPanel, n1 - n);
      int64_t m = mb;
      for (; m + 4 <= me; m += 4) q4_panel_tile<4>(a, panel, m, n, ncols, bias, y, N);
      switch (me - m) {
        case 3:
          q4_panel_tile<3>(a, panel, m, n, ncols, bias, y, N);
          break;
        case 2:
          q4_panel_tile<2>(a, panel, m, n, ncols, bias, y, N);
          break;
        case 1:
          q4_panel_tile<1>(a, panel, m, n, ncols, bias, y, N);
          break;
        default:
          break;
      }
    }
  }
}

void gemm_packed(bool q4, const ActBlocks& a, const uint8_t* wp, int64_t N, int64_t n0, int64_t n1,
                 const float* bias, float* y) {
  if (!q4) no_q8_panels();
  run_q4_panels(a, wp + n0 / kPanel * q4_panel_bytes(a.K), n0, n1, N, bias, y);
}

size_t gemm_scratch_bytes(bool q4, int64_t cols, int64_t K) {
  if (q4) return size_t(packed_bytes(true, cols, K)) + 64;
  const int64_t panels = (cols + kWideCols - 1) / kWideCols;
  return size_t(panels * wide_panel_bytes(K) + wide_rows(K) * K * 2 + 64);
}

// ggml rows: columns [n0, n1) (n0 a multiple of 16) into `scratch`, then multiplied: Q4_K packed
// into its panels (as on the VNNI level), Q8_0 widened into int16 panels.
void gemm_rows(bool q4, const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1,
               const float* bias, float* y, int64_t ldy, void* scratch) {
  uint8_t* base = align64(scratch);
  if (!q4) return gemm_rows_q8_0(a, w, n0, n1, bias, y, ldy, base);
  pack_panels(true, w, ldy, a.K, n0 / kPanel, (n1 + kPanel - 1) / kPanel, base);
  run_q4_panels(a, base, n0, n1, ldy, bias, y);
}
#endif

#if OVIS_QISA_LEVEL >= 2
// ---- panels (AVX-512 VNNI) ----
// The weight rows in panels of 16 (rows past N zero), each panel one contiguous stream in the
// order the products read it. A 32-block b of a panel holds 8 groups g of 4 k's as 64 bytes
// (16 rows × 4 bytes: one vpdpbusd operand against 4 activation bytes broadcast).
//   Q8_0 panel: nb blocks × 512 bytes of w + 128 (vpdpbusd multiplies u8 by s8; the products are
//     corrected by −128·Σx of the activation block), then nb fp16 scale vectors (16 × 2 bytes),
//     padded to 64 bytes: 1.0625 bytes per weight, as in ggml's rows.
//   Q4_K panel: per super-block of 256 k, 2368 bytes: 8 sub-blocks × 4 × 64 bytes of nibbles
//     (low nibble: group i, high nibble: group i + 4), then d and dmin as 16 fp16 each, then the
//     8 × 16 six-bit scales and the 8 × 16 mins as bytes (0.578 bytes per weight, ggml: 0.5625).
// Weights are stored in this form once (pack_panels, kernels/quant.hpp quant_pack); the GEMM on
// ggml rows packs its column chunk into the same form per call.
constexpr int64_t kQ8Vals = 512;
// Q8_0's software prefetch distance within a panel's stream (bytes; Q4_K: prefetch_q4_ahead):
// q8_0 reads twice Q4_K's bytes per block and needs them further ahead (cold 6144x2048 /
// 2048x6144 GEMV, 2 threads: 43 / 49 GB/s at 2048 bytes, 54 / 57 at 8192, 45 / 55 at 16384).
constexpr int64_t kQ8PrefetchAhead = 8192;

inline int64_t q8_panel_bytes(int64_t K) {
  const int64_t nb = K / kBlk;
  return nb * kQ8Vals + (nb * 32 + 63) / 64 * 64;
}
inline int64_t panel_bytes(bool q4, int64_t K) {
  return q4 ? q4_panel_bytes(K) : q8_panel_bytes(K);
}

int64_t packed_bytes(bool q4, int64_t N, int64_t K) {
  return (N + kPanel - 1) / kPanel * panel_bytes(q4, K);
}

// Rows [16p, 16p + 16) of w (ggml rows of K) as one panel at `out`.
void pack_q8_0_panel(const uint8_t* w, int64_t N, int64_t K, int64_t p, uint8_t* out) {
  const int64_t nb = K / kBlk, row_bytes = nb * kQ8Bytes;
  uint16_t* scales = reinterpret_cast<uint16_t*>(out + nb * kQ8Vals);
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* vals = out + b * kQ8Vals;
    for (int64_t c = 0; c < kPanel; ++c) {
      const int64_t n = p * kPanel + c;
      if (n >= N) {
        for (int g = 0; g < 8; ++g) std::memset(vals + g * 64 + c * 4, 0x80, 4);
        scales[b * kPanel + c] = 0;
        continue;
      }
      const uint8_t* blk = w + n * row_bytes + b * kQ8Bytes;
      for (int g = 0; g < 8; ++g) {
        uint32_t v;
        std::memcpy(&v, blk + 2 + 4 * g, 4);
        v ^= 0x80808080u;
        std::memcpy(vals + g * 64 + c * 4, &v, 4);
      }
      scales[b * kPanel + c] = load_u16(blk);
    }
  }
  const int64_t tail = q8_panel_bytes(K) - nb * (kQ8Vals + 32);
  if (tail > 0) std::memset(out + nb * (kQ8Vals + 32), 0, size_t(tail));
}

void pack_panels(bool q4, const uint8_t* w, int64_t N, int64_t K, int64_t p0, int64_t p1,
                 uint8_t* dst) {
  const int64_t bytes = panel_bytes(q4, K);
  for (int64_t p = p0; p < p1; ++p) {
    if (q4)
      pack_q4_k_panel(w, N, K, p, dst + (p - p0) * bytes);
    else
      pack_q8_0_panel(w, N, K, p, dst + (p - p0) * bytes);
  }
}

// The operands of one 32-block of a panel: 8 u8 vectors (group order), the per-row scale of the
// integer products and (Q4_K) the per-row coefficient of d_x·Σx.
struct Q8Panel {
  static constexpr bool kQ4 = false;
  const uint8_t* base;
  int64_t nb;
  void vals(int64_t b, __m512i v[8]) const {
    const uint8_t* q = base + b * kQ8Vals;
    for (int g = 0; g < 8; ++g) {
      _mm_prefetch(reinterpret_cast<const char*>(q + kQ8PrefetchAhead + 64 * g), _MM_HINT_T0);
      v[g] = _mm512_load_si512(q + 64 * g);
    }
  }
  void begin(int64_t) {}
  __m512 scale(int64_t b) const {
    return _mm512_cvtph_ps(
        _mm256_load_si256(reinterpret_cast<const __m256i*>(base + nb * kQ8Vals + 32 * b)));
  }
};

struct Q4Panel {
  static constexpr bool kQ4 = true;
  const uint8_t* base;
  void vals(int64_t b, __m512i v[8]) const {
    const uint8_t* q = base + (b / 8) * kQ4Super + (b % 8) * 256;
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    prefetch_q4_ahead(base, b);
    for (int i = 0; i < 4; ++i) {
      const __m512i x = _mm512_load_si512(q + 64 * i);
      v[i] = _mm512_and_si512(x, low4);
      v[i + 4] = _mm512_and_si512(_mm512_srli_epi16(x, 4), low4);
    }
  }
  static __m512 bytes_to_ps(const uint8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(p))));
  }
  __m512 d, dmin;  // of the current super-block (begin())
  void begin(int64_t b) {
    if (b % 8) return;
    const uint8_t* s = base + (b / 8) * kQ4Super + kQ4Quants;
    d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(s)));
    dmin = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(s + 32)));
  }
  // d·sc (per row) and dmin·m.
  __m512 scale(int64_t b) const {
    const uint8_t* s = base + (b / 8) * kQ4Super + kQ4Quants;
    return _mm512_mul_ps(d, bytes_to_ps(s + 64 + 16 * (b % 8)));
  }
  __m512 coef(int64_t b) const {
    const uint8_t* s = base + (b / 8) * kQ4Super + kQ4Quants;
    return _mm512_mul_ps(dmin, bytes_to_ps(s + 64 + 128 + 16 * (b % 8)));
  }
};

// Rows [m0, m0 + MR) × two panels (32 columns starting at column n of y, ncols of them valid).
// Per row and column the same operations in the same order whatever MR: the decode GEMV and
// the GEMM give bit-identical rows.
template <int MR, class P>
inline void tile(const ActBlocks& a, P p0, P p1, int64_t m0, int64_t n, int64_t ncols,
                 const float* bias, float* y, int64_t ldy) {
  constexpr bool kQ4 = P::kQ4;
  const int64_t K = a.K, nb = K / kBlk;
  __m512 c0[MR], c1[MR];
  for (int m = 0; m < MR; ++m) c0[m] = c1[m] = _mm512_setzero_ps();
  const int8_t* xq[MR];
  for (int m = 0; m < MR; ++m) xq[m] = a.q + (m0 + m) * K;
  for (int64_t b = 0; b < nb; ++b) {
    __m512i v0[8], v1[8];
    p0.begin(b);
    p1.begin(b);
    p0.vals(b, v0);
    p1.vals(b, v1);
    __m512i i0[MR], i1[MR];
    for (int m = 0; m < MR; ++m) {
      if constexpr (kQ4) {
        i0[m] = i1[m] = _mm512_setzero_si512();
      } else {
        i0[m] = i1[m] = _mm512_set1_epi32(-128 * a.s[(m0 + m) * nb + b]);
      }
    }
    for (int g = 0; g < 8; ++g) {
      for (int m = 0; m < MR; ++m) {
        int32_t xv;
        std::memcpy(&xv, xq[m] + b * kBlk + 4 * g, 4);
        const __m512i xb = _mm512_set1_epi32(xv);
        i0[m] = _mm512_dpbusd_epi32(i0[m], v0[g], xb);
        i1[m] = _mm512_dpbusd_epi32(i1[m], v1[g], xb);
      }
    }
    const __m512 s0 = p0.scale(b), s1 = p1.scale(b);
    for (int m = 0; m < MR; ++m) {
      const __m512 dx = _mm512_set1_ps(a.d[(m0 + m) * nb + b]);
      // (maskz: GCC 12 warns about the undefined source of the plain conversion)
      c0[m] =
          _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, i0[m]), _mm512_mul_ps(s0, dx), c0[m]);
      c1[m] =
          _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xffff, i1[m]), _mm512_mul_ps(s1, dx), c1[m]);
    }
    if constexpr (kQ4) {
      const __m512 k0 = p0.coef(b), k1 = p1.coef(b);
      for (int m = 0; m < MR; ++m) {
        const __m512 ds = _mm512_set1_ps(a.ds[(m0 + m) * nb + b]);
        c0[m] = _mm512_fnmadd_ps(k0, ds, c0[m]);
        c1[m] = _mm512_fnmadd_ps(k1, ds, c1[m]);
      }
    }
  }
  const __mmask16 k0 = ncols >= 16 ? __mmask16(0xffff) : __mmask16((1u << ncols) - 1);
  const __mmask16 k1 = ncols >= 32  ? __mmask16(0xffff)
                       : ncols > 16 ? __mmask16((1u << (ncols - 16)) - 1)
                                    : __mmask16(0);
  const __m512 b0 = bias ? _mm512_maskz_loadu_ps(k0, bias + n) : _mm512_setzero_ps();
  const __m512 b1 = bias && k1 ? _mm512_maskz_loadu_ps(k1, bias + n + 16) : _mm512_setzero_ps();
  for (int m = 0; m < MR; ++m) {
    float* yr = y + (m0 + m) * ldy + n;
    _mm512_mask_storeu_ps(yr, k0, _mm512_add_ps(c0[m], b0));
    if (k1) _mm512_mask_storeu_ps(yr + 16, k1, _mm512_add_ps(c1[m], b1));
  }
}

template <class P>
P panel_at(const uint8_t* base, int64_t K) {
  if constexpr (P::kQ4)
    return P{base, _mm512_setzero_ps(), _mm512_setzero_ps()};
  else
    return P{base, K / kBlk};
}

// Columns [n0, n1) of y [M][N] for every row; `panels` is the panel holding column n0 (n0 a
// multiple of 16), the later ones following it.
template <class P>
void run_panels(const ActBlocks& a, const uint8_t* panels, int64_t n0, int64_t n1, int64_t N,
                const float* bias, float* y) {
  const int64_t bytes = panel_bytes(P::kQ4, a.K);
  const int64_t npanels = (n1 - n0 + kPanel - 1) / kPanel;
  // Rows in blocks that stay in L2 while every panel pair passes over them.
  constexpr int64_t kRowBlock = 128;
  for (int64_t mb = 0; mb < a.M; mb += kRowBlock) {
    const int64_t me = min64(a.M, mb + kRowBlock);
    for (int64_t p = 0; p < npanels; p += 2) {
      const P p0 = panel_at<P>(panels + p * bytes, a.K);
      // An odd last panel pairs with itself; its second half is not stored.
      const P p1 = panel_at<P>(panels + min64(p + 1, npanels - 1) * bytes, a.K);
      const int64_t n = n0 + p * kPanel;
      const int64_t ncols = min64(n1 - n, p + 1 < npanels ? 2 * kPanel : kPanel);
      int64_t m = mb;
      for (; m + 4 <= me; m += 4) tile<4>(a, p0, p1, m, n, ncols, bias, y, N);
      switch (me - m) {
        case 3:
          tile<3>(a, p0, p1, m, n, ncols, bias, y, N);
          break;
        case 2:
          tile<2>(a, p0, p1, m, n, ncols, bias, y, N);
          break;
        case 1:
          tile<1>(a, p0, p1, m, n, ncols, bias, y, N);
          break;
        default:
          break;
      }
    }
  }
}

void run_panels(bool q4, const ActBlocks& a, const uint8_t* panels, int64_t n0, int64_t n1,
                int64_t N, const float* bias, float* y) {
  if (q4)
    run_panels<Q4Panel>(a, panels, n0, n1, N, bias, y);
  else
    run_panels<Q8Panel>(a, panels, n0, n1, N, bias, y);
}

void gemm_packed(bool q4, const ActBlocks& a, const uint8_t* wp, int64_t N, int64_t n0, int64_t n1,
                 const float* bias, float* y) {
  run_panels(q4, a, wp + n0 / kPanel * panel_bytes(q4, a.K), n0, n1, N, bias, y);
}

size_t gemm_scratch_bytes(bool q4, int64_t cols, int64_t K) {
  return size_t(packed_bytes(q4, cols, K)) + 64;
}

// ggml rows: columns [n0, n1) (n0 a multiple of 16) packed into `scratch`, then multiplied.
void gemm_rows(bool q4, const ActBlocks& a, const uint8_t* w, int64_t n0, int64_t n1,
               const float* bias, float* y, int64_t ldy, void* scratch) {
  // ldy is N (y rows are the full output rows).
  const int64_t N = ldy;
  uint8_t* base = align64(scratch);
  pack_panels(q4, w, N, a.K, n0 / kPanel, (n1 + kPanel - 1) / kPanel, base);
  run_panels(q4, a, base, n0, n1, N, bias, y);
}
#endif

}  // namespace

const QuantKernels& quant_kernels() {
#if OVIS_QISA_LEVEL >= 2
  static const QuantKernels t{quantize_act,       gemv_q8_0,    gemv_q4_k,   gemm_rows,
                              gemm_scratch_bytes, packed_bytes, pack_panels, gemm_packed};
#elif OVIS_QISA_LEVEL == 1
  static const QuantKernels t{quantize_act,       gemv_q8_0,    gemv_q4_k,   gemm_rows,
                              gemm_scratch_bytes, packed_bytes, pack_panels, gemm_packed};
#else
  static const QuantKernels t{quantize_act, gemv_q8_0, gemv_q4_k, nullptr,
                              nullptr,      nullptr,   nullptr,   nullptr};
#endif
  return t;
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
