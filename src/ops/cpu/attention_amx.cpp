// BF16-mode attention on AMX tiles: bf16 Q, K, V and P with fp32 accumulation, fp32 softmax,
// which is what the reference's flash-attention/SDPA computes on the GPU (spec §9.1, §9.5).
//
// K and V of every kv head are packed once per call into the tile operand layouts (linear in
// Lk). Each task is one (query head, 32-query tile): S = Q·Kᵀ into a [32, Lk] fp32 block, exact
// (two-pass) softmax per row, P rounded to bf16, then O = P·V with the sum of the unrounded
// exponentials as the normaliser. Tiles: C00..C11 = 0..3 (2x2 blocks of 16x16 fp32),
// A0/A1 = 4/5 (16 rows each), B0/B1 = 6/7.
#include <immintrin.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "ops/cpu/attention_kernels.hpp"

namespace ovis::ops::cpu {

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__)

namespace {

constexpr int64_t kRows = 32;   // queries per task: two 16-row A tiles
constexpr int64_t kBlock = 32;  // keys per step: two 16-key B tiles for S, one 32-deep step for P·V
constexpr int64_t kDepth = 32;  // bf16 elements per tile row (64 bytes)

int64_t round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}

// Mask of the first n < 16 lanes.
__mmask16 tail_mask(int64_t n) {
  return __mmask16((1u << n) - 1u);
}

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = 64;
    c.rows[t] = 16;
  }
  _tile_loadconfig(&c);
}

// n floats to bf16 (round to nearest even), zero-padded to n_pad.
void to_bf16_row(const float* x, int64_t n, int64_t n_pad, uint16_t* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i*)(out + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    _mm256_mask_storeu_epi16(out + i, __mmask16(tail_mask(n - i)), (__m256i)b);
    i = n;
  }
  std::memset(out + i, 0, size_t(n_pad - i) * 2);
}

// Keys of kv head g as the B operand of S = Q·Kᵀ: [lk_pad/16][dp/2][16 keys][2 dims], i.e. a
// tile row holds one dim pair for 16 keys.
void pack_keys(const AttentionArgs& a, int g, int64_t lk_pad, int64_t dp, uint16_t* out) {
  std::vector<uint16_t> rows(static_cast<size_t>(16 * dp));
  for (int64_t j0 = 0; j0 < lk_pad; j0 += 16) {
    for (int64_t j = 0; j < 16; ++j) {
      if (j0 + j < a.lk)
        to_bf16_row(a.k + (j0 + j) * a.ldk() + g * a.d, a.d, dp, rows.data() + j * dp);
      else
        std::memset(rows.data() + j * dp, 0, size_t(dp) * 2);
    }
    uint32_t* blk = reinterpret_cast<uint32_t*>(out + j0 * dp);
    const uint32_t* src = reinterpret_cast<const uint32_t*>(rows.data());
    for (int64_t p = 0; p < dp / 2; ++p)
      for (int64_t j = 0; j < 16; ++j) blk[p * 16 + j] = src[j * (dp / 2) + p];
  }
}

// Values of kv head g as the B operand of O = P·V: [dp/32][lk_pad/2][32 dims][2 keys], i.e. a
// tile row holds one key pair for 16 dims, and each 32-dim pass of P·V streams one contiguous
// quarter (at D = 128).
void pack_values(const AttentionArgs& a, int g, int64_t lk_pad, int64_t dp, uint16_t* out) {
  std::vector<uint16_t> r0(static_cast<size_t>(dp)), r1(r0.size());
  // Interleaves two rows of 16 bf16: lanes (r0[c], r1[c]) for c = 0..15.
  alignas(64) uint16_t idx[32];
  for (int c = 0; c < 16; ++c) idx[2 * c] = uint16_t(c), idx[2 * c + 1] = uint16_t(16 + c);
  const __m512i perm = _mm512_load_si512(idx);
  for (int64_t j = 0; j < lk_pad; j += 2) {
    for (int e = 0; e < 2; ++e) {
      uint16_t* r = e ? r1.data() : r0.data();
      if (j + e < a.lk)
        to_bf16_row(a.v + (j + e) * a.ldk() + g * a.d, a.d, dp, r);
      else
        std::memset(r, 0, size_t(dp) * 2);
    }
    for (int64_t c = 0; c < dp; c += 16) {
      const __m512i both = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i*)(r0.data() + c))),
          _mm256_loadu_si256((const __m256i*)(r1.data() + c)), 1);
      uint16_t* o = out + ((c / 32) * (lk_pad / 2) + j / 2) * 64 + (c % 32) * 2;
      _mm512_storeu_si512(o, _mm512_permutexvar_epi16(perm, both));
    }
  }
}

// 2^t for t <= 0 (the softmax exponents): t = n + f with |f| <= 1/2, 2^f by its degree-5 Taylor
// polynomial in f·ln2 (relative error < 3e-6, far below the bf16 rounding of P), scaled by 2^n.
inline __m512 exp2_nonpositive(__m512 t) {
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.3333558146428443e-3f);                 // ln2^5 / 5!
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-3f));  // ln2^4 / 4!
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-2f));  // ln2^3 / 3!
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265069591007e-1f));  // ln2^2 / 2!
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471805599453e-1f));  // ln2
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// Row r of the probabilities, stored block-major for the P·V tiles: key j of row r lives at
// p[(j / 32)·32·32 + r·32 + j % 32], so each 32-key step reads two contiguous 1 KiB tiles.
// Writes e^((s[j] − mx)·scale) in bf16 for j < n and zeros for n <= j < n_pad (a multiple of
// 32); returns the fp32 sum. Needs scale > 0 and mx = max_j<n s[j].
float exp_row_bf16(const float* s, int64_t n, int64_t n_pad, float scale, float mx, uint16_t* p,
                   int64_t r) {
  const float c = scale * 1.44269504088896341f;  // e^x = 2^(x·log2 e)
  const __m512 vc = _mm512_set1_ps(c), vm = _mm512_set1_ps(mx * c);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t j = 0; j < n_pad; j += 16) {
    uint16_t* dst = p + (j / 32) * 32 * 32 + r * 32 + j % 32;
    if (j >= n) {
      _mm256_storeu_si256((__m256i*)dst, _mm256_setzero_si256());
      continue;
    }
    const __mmask16 k = n - j >= 16 ? __mmask16(0xffff) : tail_mask(n - j);
    const __m512 t = _mm512_fmsub_ps(_mm512_maskz_loadu_ps(k, s + j), vc, vm);
    const __m512 e =
        _mm512_maskz_mov_ps(k, exp2_nonpositive(_mm512_min_ps(t, _mm512_setzero_ps())));
    acc = _mm512_add_ps(acc, e);
    _mm256_storeu_si256((__m256i*)dst, (__m256i)_mm512_cvtneps_pbh(e));
  }
  return _mm512_reduce_add_ps(acc);
}

}  // namespace

void attention_amx(const AttentionArgs& a) {
  const int64_t d = a.d, dp = round_up(d, kDepth), lk_pad = round_up(a.lk, kBlock);
  // Row stride of the score block, one cache line past the padded length so
  // the 16 rows of a tile do not all map to the same L1 set when Lk is a multiple of 1024.
  const int64_t lds = lk_pad + 16;
  const int64_t ldq = a.ldq();
  const int64_t tiles = (a.lq + kRows - 1) / kRows;
  const int64_t tasks = tiles * a.q_heads;
  const int group = a.group();
  // Packed per kv head: lk_pad·dp bf16 each for K and V.
  std::vector<uint16_t> kp(static_cast<size_t>(a.kv_heads * lk_pad * dp)), vp(kp.size());
#pragma omp parallel for schedule(static)
  for (int t = 0; t < 2 * a.kv_heads; ++t) {
    const int g = t / 2;
    if (t % 2 == 0)
      pack_keys(a, g, lk_pad, dp, kp.data() + g * lk_pad * dp);
    else
      pack_values(a, g, lk_pad, dp, vp.data() + g * lk_pad * dp);
  }

#pragma omp parallel
  {
    std::vector<uint16_t> qb(static_cast<size_t>(kRows * dp)),
        p(static_cast<size_t>(kRows * lk_pad));
    std::vector<float> s(static_cast<size_t>(kRows * lds)), o(static_cast<size_t>(kRows * dp));
    float sum[kRows];
    __m512 row_max[kRows];
    configure_tiles();
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t h = task / tiles, i0 = (task % tiles) * kRows;
      const int64_t rows = std::min(kRows, a.lq - i0);
      const uint16_t* kh = kp.data() + (h / group) * lk_pad * dp;
      const uint16_t* vh = vp.data() + (h / group) * lk_pad * dp;
      const int64_t blocks = (a.key_end(i0 + rows - 1) + kBlock - 1) / kBlock;
      for (int64_t r = 0; r < kRows; ++r) {
        if (r < rows)
          to_bf16_row(a.q + (i0 + r) * ldq + h * d, d, dp, qb.data() + r * dp);
        else
          std::memset(qb.data() + r * dp, 0, size_t(dp) * 2);
      }

      // S = Q·Kᵀ, 32 keys per step, with each row's running max while the block is in L1.
      for (int64_t r = 0; r < kRows; ++r) row_max[r] = _mm512_set1_ps(-INFINITY);
      for (int64_t b = 0; b < blocks; ++b) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        const uint16_t* k0 = kh + (2 * b) * 16 * dp;
        const uint16_t* k1 = k0 + 16 * dp;
        for (int64_t c = 0; c < dp; c += kDepth) {
          _tile_loadd(4, qb.data() + c, dp * 2);
          _tile_loadd(5, qb.data() + 16 * dp + c, dp * 2);
          _tile_loadd(6, k0 + c * 16, 64);
          _tile_loadd(7, k1 + c * 16, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        float* sb = s.data() + b * kBlock;
        _tile_stored(0, sb, lds * 4);
        _tile_stored(1, sb + 16, lds * 4);
        _tile_stored(2, sb + 16 * lds, lds * 4);
        _tile_stored(3, sb + 16 * lds + 16, lds * 4);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t valid = std::clamp<int64_t>(a.key_end(i0 + r) - b * kBlock, 0, kBlock);
          const __mmask32 m = __mmask32((uint64_t(1) << valid) - 1);
          const float* sr = sb + r * lds;
          row_max[r] =
              _mm512_mask_max_ps(row_max[r], __mmask16(m), row_max[r], _mm512_loadu_ps(sr));
          row_max[r] = _mm512_mask_max_ps(row_max[r], __mmask16(m >> 16), row_max[r],
                                          _mm512_loadu_ps(sr + 16));
        }
      }

      for (int64_t r = 0; r < kRows; ++r) {
        if (r < rows) {
          const float* sr = s.data() + r * lds;
          sum[r] = exp_row_bf16(sr, a.key_end(i0 + r), blocks * kBlock, a.scale,
                                _mm512_reduce_max_ps(row_max[r]), p.data(), r);
        } else {
          exp_row_bf16(nullptr, 0, blocks * kBlock, a.scale, 0.0f, p.data(), r);
        }
      }

      // O = P·V, 32 output dims per pass, 32 keys (16 pairs) per step.
      for (int64_t c = 0; c < dp; c += 32) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int64_t b = 0; b < blocks; ++b) {
          const uint16_t* vb = vh + ((c / 32) * (lk_pad / 2) + b * 16) * 64;
          _tile_loadd(4, p.data() + b * kBlock * kRows, 64);
          _tile_loadd(5, p.data() + b * kBlock * kRows + 16 * kBlock, 64);
          _tile_loadd(6, vb, 128);
          _tile_loadd(7, vb + 32, 128);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
        _tile_stored(0, o.data() + c, dp * 4);
        _tile_stored(1, o.data() + c + 16, dp * 4);
        _tile_stored(2, o.data() + 16 * dp + c, dp * 4);
        _tile_stored(3, o.data() + 16 * dp + c + 16, dp * 4);
      }

      for (int64_t r = 0; r < rows; ++r) {
        const float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        float* out = a.out + (i0 + r) * ldq + h * d;
        for (int64_t x = 0; x < d; ++x) out[x] = o[r * dp + x] * inv;
      }
    }
    _tile_release();
  }
}

#else

void attention_amx(const AttentionArgs&) {
  fail("internal error: AMX attention not compiled in");
}

#endif

}  // namespace ovis::ops::cpu
