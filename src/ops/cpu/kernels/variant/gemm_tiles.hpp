// Per-ISA pieces of the bf16 GEMM (gemm_bf16.cpp): blocking sizes, the packed layouts, the
// packing routines and the register-blocked microkernel. Every level defines the same names:
//   kMR x kNR     microkernel tile (rows of A x columns of the weight)
//   kKC, kMC, kNC cache blocks over K, M, N (kMC a multiple of kMR, kNC of kNR)
//   PackA         rounded activations, [kMC rows][kAStride], odd k padded with 0
//   PackB         one weight panel of kNR columns per kBPanel elements
//   k_steps(kc)   microkernel iterations for kc values of k
//   pack_a_row    one row of activations: kc floats rounded into PackA (zero pair padding)
//   pack_b        one panel: weight columns [j0, j0 + nr), nr <= kNR (zero padded), by k
//                 [k0, k0 + kc)
//   tile<R>()     R rows x kNR columns: c = (accumulate ? c : bias|0) + A·B
#pragma once
#include "ops/cpu/kernels/variant/common.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

struct GemmProblem {
  int64_t M, N, K;
  int64_t kc;  // K block: K split into equal blocks of at most kKC (block_k)
  const float* a;
  int64_t lda;
  const uint16_t* w;  // the stored weight, or null when `packed` is given
  int64_t ldw;
  WeightLayout layout;
  const float* bias;
  float* c;
  int64_t ldc;
  const void* packed = nullptr;  // the weight prepacked (pack_bf16; kHasPackedWeights levels)
};

inline int64_t clamp_count(int64_t v, int64_t hi) {
  return v < 0 ? 0 : v > hi ? hi : v;
}

#if defined(__AVX512F__)
// r[i] = row i of a 16 x 16 matrix of 32-bit elements; on return r[i] = column i.
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // u[4g + j] holds, in 128-bit lane L, column 4L + j of rows 4g..4g+3.
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);
    const __m512i w0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xdd);
    const __m512i v1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xdd);
    r[j] = _mm512_shuffle_i32x4(v0, v1, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(v0, v1, 0xdd);
    r[4 + j] = _mm512_shuffle_i32x4(w0, w1, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(w0, w1, 0xdd);
  }
}

// c = acc + (accumulate ? c : bias|0) for an R x 16·V tile; a macro, not a function taking
// the array, so that the accumulators stay in registers.
#define OVIS_STORE_TILE_512(acc, R, V, c, ldc, bias, accumulate)                                 \
  do {                                                                                           \
    if (accumulate) {                                                                            \
      _Pragma("GCC unroll 16") for (int r_ = 0; r_ < R;                                          \
                                    ++r_) _Pragma("GCC unroll 8") for (int j_ = 0; j_ < V; ++j_) \
          _mm512_storeu_ps(c + r_ * ldc + 16 * j_,                                               \
                           _mm512_add_ps(acc[r_][j_], _mm512_loadu_ps(c + r_ * ldc + 16 * j_))); \
    } else if (bias) {                                                                           \
      _Pragma("GCC unroll 16") for (int r_ = 0; r_ < R; ++r_)                                    \
          _Pragma("GCC unroll 8") for (int j_ = 0; j_ < V; ++j_)                                 \
              _mm512_storeu_ps(c + r_ * ldc + 16 * j_,                                           \
                               _mm512_add_ps(acc[r_][j_], _mm512_loadu_ps(bias + 16 * j_)));     \
    } else {                                                                                     \
      _Pragma("GCC unroll 16") for (int r_ = 0; r_ < R; ++r_)                                    \
          _Pragma("GCC unroll 8") for (int j_ = 0; j_ < V; ++j_)                                 \
              _mm512_storeu_ps(c + r_ * ldc + 16 * j_, acc[r_][j_]);                             \
    }                                                                                            \
  } while (0)

inline __mmask32 first_n_mask32(int64_t n) {
  return n >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << n) - 1);
}
inline __mmask16 first_n_mask16(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
}
// 16 bf16 / f16 bit patterns zero-extended to 32-bit lanes.
inline __m512i load16_u16(const uint16_t* p, int64_t n) {
  return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(first_n_mask16(n), p));
}
#endif

#if defined(__AVX512BF16__)
// ---- AVX512-BF16: vdpbf16ps multiplies 16 pairs (k, k+1) per instruction. ----
// A tile runs over up to 1024 k: its 64-column weight panel (128 KiB) stays in L2 for every row
// tile of the chunk, while the 6 activation rows stream through L1, and C is loaded and stored
// once per 1024 k instead of once per 256 (those stores were ~10% of the tile's time). No M
// blocking: every row of a chunk reuses the panel while it is in L2.
constexpr int kMR = 6;
constexpr int64_t kNR = 64, kKC = 1024, kMC = 8190, kNC = 3072;
using PackA = uint16_t;  // bf16 rows
using PackB = uint32_t;  // [k pair][kNR]: w(n, k) | w(n, k + 1) << 16
// Rows 2 KiB + 64 bytes apart: the six rows a tile reads would alias in L1 at 2 KiB.
constexpr int64_t kAStride = kKC + 32;
constexpr int64_t kBPanel = kKC / 2 * kNR;
inline int64_t k_steps(int64_t kc) {
  return (kc + 1) / 2;
}

inline void pack_a_row(const float* src, int64_t kc, PackA* dst) {
  convert_to_bf16(src, kc, dst);
  if (kc & 1) dst[kc] = 0;
}

inline void pack_b(const GemmProblem& p, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                   PackB* panel) {
  const int64_t q_end = k_steps(kc);
  if (p.layout == WeightLayout::NK) {
    // A weight row holds the pairs of one column: transpose 16 rows x 16 pairs at a time.
    for (int64_t g = 0; g < kNR; g += 16) {
      const int64_t rows = clamp_count(nr - g, 16);
      const uint16_t* w = p.w + (j0 + g) * p.ldw + k0;
      for (int64_t q0 = 0; q0 < q_end; q0 += 16) {
        const __mmask32 mask = first_n_mask32(kc - 2 * q0);
        __m512i r[16];
        for (int i = 0; i < 16; ++i)
          r[i] = i < rows ? _mm512_maskz_loadu_epi16(mask, w + i * p.ldw + 2 * q0)
                          : _mm512_setzero_si512();
        transpose16x16(r);
        const int64_t qn = imin(16, q_end - q0);
        for (int64_t i = 0; i < qn; ++i) _mm512_store_si512(panel + (q0 + i) * kNR + g, r[i]);
      }
    }
  } else {
    // Rows k and k + 1 interleaved.
    for (int64_t q = 0; q < q_end; ++q) {
      const uint16_t* w0 = p.w + (k0 + 2 * q) * p.ldw + j0;
      const bool has_odd = 2 * q + 1 < kc;
      for (int64_t g = 0; g < kNR; g += 16) {
        const int64_t cols = clamp_count(nr - g, 16);
        __m512i v = _mm512_setzero_si512();
        if (cols > 0) {
          v = load16_u16(w0 + g, cols);
          if (has_odd)
            v = _mm512_or_si512(v, _mm512_slli_epi32(load16_u16(w0 + p.ldw + g, cols), 16));
        }
        _mm512_store_si512(panel + q * kNR + g, v);
      }
    }
  }
}

template <int R>
inline void tile(int64_t ksteps, const PackA* a, const PackB* b, float* c, int64_t ldc,
                 const float* bias, bool accumulate) {
  constexpr int V = int(kNR / 16);
  // The C tile is read and written once per KC block, rows N floats apart: fetch it while the
  // products run.
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) _mm_prefetch((const char*)(c + r * ldc + 16 * j), _MM_HINT_T0);
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t q = 0; q < ksteps; ++q) {
    __m512bh bv[V];
    for (int j = 0; j < V; ++j) bv[j] = (__m512bh)_mm512_load_si512(b + q * kNR + 16 * j);
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * kAStride + 2 * q, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
      for (int j = 0; j < V; ++j) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], bv[j], av);
    }
  }
  OVIS_STORE_TILE_512(acc, R, V, c, ldc, bias, accumulate);
}

#elif defined(__AVX512F__)
// ---- AVX-512 without BF16: the same products with f32 FMAs on bf16-rounded values. ----
constexpr int kMR = 12;
constexpr int64_t kNR = 32, kKC = 256, kMC = 384, kNC = 3072;
using PackA = float;  // bf16-rounded rows
using PackB = float;  // [k][kNR] widened weights
constexpr int64_t kAStride = kKC;
constexpr int64_t kBPanel = kKC * kNR;
inline int64_t k_steps(int64_t kc) {
  return kc;
}

inline void pack_a_row(const float* src, int64_t kc, PackA* dst) {
  round_to_bf16_f32(src, kc, dst);
}

inline void pack_b(const GemmProblem& p, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                   PackB* panel) {
  if (p.layout == WeightLayout::NK) {
    for (int64_t g = 0; g < kNR; g += 16) {
      const int64_t rows = clamp_count(nr - g, 16);
      const uint16_t* w = p.w + (j0 + g) * p.ldw + k0;
      for (int64_t k = 0; k < kc; k += 16) {
        __m512i r[16];
        for (int i = 0; i < 16; ++i)
          r[i] = i < rows ? _mm512_slli_epi32(load16_u16(w + i * p.ldw + k, kc - k), 16)
                          : _mm512_setzero_si512();
        transpose16x16(r);
        const int64_t kn = imin(16, kc - k);
        for (int64_t i = 0; i < kn; ++i) _mm512_store_si512(panel + (k + i) * kNR + g, r[i]);
      }
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const uint16_t* w = p.w + (k0 + k) * p.ldw + j0;
      for (int64_t g = 0; g < kNR; g += 16) {
        const int64_t cols = clamp_count(nr - g, 16);
        __m512i v = _mm512_setzero_si512();
        if (cols > 0) v = _mm512_slli_epi32(load16_u16(w + g, cols), 16);
        _mm512_store_si512(panel + k * kNR + g, v);
      }
    }
  }
}

template <int R>
inline void tile(int64_t ksteps, const PackA* a, const PackB* b, float* c, int64_t ldc,
                 const float* bias, bool accumulate) {
  constexpr int V = int(kNR / 16);
  __m512 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < ksteps; ++k) {
    __m512 bv[V];
    for (int j = 0; j < V; ++j) bv[j] = _mm512_load_ps(b + k * kNR + 16 * j);
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * kAStride + k]);
      for (int j = 0; j < V; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
  OVIS_STORE_TILE_512(acc, R, V, c, ldc, bias, accumulate);
}

#else
// ---- AVX2 + FMA (8 lanes) or plain C++: f32 products of bf16-rounded values. ----
#if defined(__AVX2__)
constexpr int kMR = 6;
constexpr int64_t kNR = 16;
#else
constexpr int kMR = 4;
constexpr int64_t kNR = 8;
#endif
constexpr int64_t kKC = 256, kMC = 192, kNC = 2048;
using PackA = float;
using PackB = float;
constexpr int64_t kAStride = kKC;
constexpr int64_t kBPanel = kKC * kNR;
inline int64_t k_steps(int64_t kc) {
  return kc;
}

inline void pack_a_row(const float* src, int64_t kc, PackA* dst) {
  round_to_bf16_f32(src, kc, dst);
}

inline void pack_b(const GemmProblem& p, int64_t j0, int64_t nr, int64_t k0, int64_t kc,
                   PackB* panel) {
  if (p.layout == WeightLayout::NK) {
    for (int64_t j = 0; j < kNR; ++j) {
      if (j >= nr) {
        for (int64_t k = 0; k < kc; ++k) panel[k * kNR + j] = 0.0f;
        continue;
      }
      const uint16_t* w = p.w + (j0 + j) * p.ldw + k0;
      for (int64_t k = 0; k < kc; ++k) panel[k * kNR + j] = from_bf16(w[k]);
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      const uint16_t* w = p.w + (k0 + k) * p.ldw + j0;
      for (int64_t j = 0; j < kNR; ++j) panel[k * kNR + j] = j < nr ? from_bf16(w[j]) : 0.0f;
    }
  }
}

#if defined(__AVX2__)
template <int R>
inline void tile(int64_t ksteps, const PackA* a, const PackB* b, float* c, int64_t ldc,
                 const float* bias, bool accumulate) {
  constexpr int V = int(kNR / 8);
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < V; ++j) acc[r][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < ksteps; ++k) {
    __m256 bv[V];
    for (int j = 0; j < V; ++j) bv[j] = _mm256_load_ps(b + k * kNR + 8 * j);
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * kAStride + k);
      for (int j = 0; j < V; ++j) acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
  if (accumulate) {
    _Pragma("GCC unroll 16") for (int r = 0; r < R; ++r)
        _Pragma("GCC unroll 8") for (int j = 0; j < V; ++j) _mm256_storeu_ps(
            c + r * ldc + 8 * j, _mm256_add_ps(acc[r][j], _mm256_loadu_ps(c + r * ldc + 8 * j)));
  } else if (bias) {
    _Pragma("GCC unroll 16") for (int r = 0; r < R; ++r)
        _Pragma("GCC unroll 8") for (int j = 0; j < V; ++j) _mm256_storeu_ps(
            c + r * ldc + 8 * j, _mm256_add_ps(acc[r][j], _mm256_loadu_ps(bias + 8 * j)));
  } else {
    _Pragma("GCC unroll 16") for (int r = 0; r < R; ++r)
        _Pragma("GCC unroll 8") for (int j = 0; j < V; ++j)
            _mm256_storeu_ps(c + r * ldc + 8 * j, acc[r][j]);
  }
}
#else
template <int R>
inline void tile(int64_t ksteps, const PackA* a, const PackB* b, float* c, int64_t ldc,
                 const float* bias, bool accumulate) {
  float acc[R][kNR] = {};
  for (int64_t k = 0; k < ksteps; ++k)
    for (int r = 0; r < R; ++r) {
      const float av = a[r * kAStride + k];
      for (int64_t j = 0; j < kNR; ++j) acc[r][j] += av * b[k * kNR + j];
    }
  for (int r = 0; r < R; ++r)
    for (int64_t j = 0; j < kNR; ++j)
      c[r * ldc + j] = acc[r][j] + (accumulate ? c[r * ldc + j] : bias ? bias[j] : 0.0f);
}
#endif
#endif

static_assert(kMC % kMR == 0 && kNC % kNR == 0, "cache blocks hold whole tiles");
static_assert(kKC % 32 == 0 && kAStride >= kKC, "K blocks are rounded to 32");

// K in equal blocks of at most kKC (multiples of 32): 1536 = 2 x 768, not 1024 + 512.
inline int64_t block_k(int64_t K) {
  const int64_t blocks = ceil_div(K, kKC);
  return imin(kKC, ceil_div(ceil_div(K, blocks), 32) * 32);
}

// Prepacked weights (kernels.hpp pack_bf16): the levels whose panels are independent of the K
// blocking store w[N, K] as ceil(N / kNR) panels of k_steps(K) x kNR elements (zero padded),
// panel j's k step q at j * k_steps(K) * kNR + q * kNR, so a K block starting at an even k is
// a contiguous run of the panel: exactly what pack_b would have produced for it.
#if defined(__AVX512BF16__)
constexpr bool kHasPackedWeights = true;
#else
constexpr bool kHasPackedWeights = false;
#endif
inline const PackB* packed_panel(const GemmProblem& p, int64_t j0, int64_t k0) {
  return static_cast<const PackB*>(p.packed) + (j0 / kNR) * k_steps(p.K) * kNR + k_steps(k0) * kNR;
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
