// Shared helpers of the per-ISA kernel variants. Only included by files under kernels/variant/,
// which CMake compiles once per ISA with OVIS_KERNEL_NS set to the ISA's name.
//
// Invariant: every function a variant defines lives in namespace kernels::OVIS_KERNEL_NS (or is
// local to its file), and variants call no inline or template code from other headers (not even
// the standard library's): a weak symbol compiled for AVX-512 in one variant could otherwise be
// picked by the linker for all of them. test_kernel_symbols checks the object files for this.
#pragma once
#if !defined(OVIS_KERNEL_NS)
#error "kernels/variant/ sources are compiled once per ISA by CMake (OVIS_KERNEL_NS)"
#endif

// GCC 12 reports its own _mm*_undefined_*() helpers as (maybe) used uninitialized when they
// are inlined under generic tuning (GCC bug 105593, fixed in 12.3).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ops/cpu/kernels/variant_table.hpp"
#include "ops/cpu/kernels/work_pool.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

// The entry points of kernels.hpp, this ISA's copy (variant_table() exports them).
void gemm_bf16(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const uint16_t* w,
               int64_t ldw, WeightLayout layout, const float* bias, float* c, int64_t ldc,
               int threads);
void gemv_bf16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w,
               const float* bias, float* y, int threads);
void convert_f32_to_bf16(int64_t n, const float* src, uint16_t* dst, int threads);
void gemv_w16(int64_t M, int64_t N, int64_t K, const float* x, const uint16_t* w, bool w_f16,
              const float* bias, float* y, int threads);
void gemv_group_bf16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                     int threads);
void gemv_group_w16(int64_t M, int64_t K, const float* x, const GemvOut* outs, int count,
                    bool w_f16, int threads);
int64_t packed_bf16_bytes(int64_t N, int64_t K);
void pack_bf16(int64_t N, int64_t K, const uint16_t* w, void* dst, int threads);
void gemm_bf16_packed(int64_t M, int64_t N, int64_t K, const float* a, const void* wp,
                      const float* bias, float* c, int threads);
void gemv_group_bf16_packed(int64_t M, int64_t K, const float* x, const PackedOut* outs, int count,
                            int threads);
// A packed-weight entry point reached on a level without packed weights (packed_bf16_bytes()
// returned 0 there): a caller bug, reported and aborted.
[[noreturn]] inline void packed_weights_unsupported(const char* fn) {
  std::fprintf(stderr, "internal error: %s called on a kernel level without packed weights\n", fn);
  std::abort();
}
#if defined(__AVX2__)
// Pins vector values to registers at this point of an unrolled loop. Integer adds are
// associative, so GCC may otherwise turn a chain of accumulations into a tree of all the
// products, spilled to the stack (the AVX2 Q8_0 GEMM tile ran at 0.6x).
template <class... V>
inline void keep_in_register(V&... v) {
  ([&] { asm("" : "+x"(v)); }(), ...);
}
#endif
// The block-quantized weight kernels (variant/quant.cpp).
const QuantKernels& quant_kernels();
// The row math (variant/rows.cpp).
const RowKernels& row_kernels();

// gemm_bf16 hands products with at most this many rows to the GEMV.
constexpr int64_t kGemvMaxRows = 4;

constexpr int64_t imin(int64_t a, int64_t b) {
  return a < b ? a : b;
}
constexpr int64_t imax(int64_t a, int64_t b) {
  return a > b ? a : b;
}
constexpr int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

inline int resolve_threads(int threads) {
  return threads > 0 ? threads : omp_get_max_threads();
}

// ---- f32 -> bf16, round to nearest even; NaN keeps sign and payload top bits, quiet bit set.
// Bit-identical to ovis::f32_to_bf16 (core/dtype.hpp) for every input, denormals included.

inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float from_bf16(uint16_t v) {
  const uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float round_to_bf16(float f) {
  return from_bf16(to_bf16(f));
}

// IEEE half -> f32, exact (denormals and NaN included).
inline float from_f16(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    u = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) {
    u = sign;
  } else {
    exp = 113;
    while (!(man & 0x400u)) {
      man <<= 1;
      --exp;
    }
    u = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

#if defined(__AVX512F__)
// 16 floats -> 16 rounded bf16 bit patterns in the low half of each 32-bit lane (upper half 0).
inline __m512i to_bf16_lanes(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}
// 16 floats -> 16 bf16 values.
inline __m256i to_bf16_x16(__m512 x) {
  return _mm512_cvtepi32_epi16(to_bf16_lanes(x));
}
// x rounded to bf16, as f32.
inline __m512 round_to_bf16_x16(__m512 x) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(to_bf16_lanes(x), 16));
}
#endif

#if defined(__AVX2__)
inline __m256i to_bf16_lanes8(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i rounded =
      _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
  // |u| > 0x7f800000 as signed compare: both sides are non-negative.
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  return _mm256_blendv_epi8(rounded, quiet, nan);
}
inline __m256 round_to_bf16_x8(__m256 x) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(to_bf16_lanes8(x), 16));
}
#endif

// n floats -> n bf16 (RNE).
inline void convert_to_bf16(const float* src, int64_t n, uint16_t* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256((__m256i*)(dst + i), to_bf16_x16(_mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(dst + i, m, to_bf16_x16(_mm512_maskz_loadu_ps(m, src + i)));
  }
  return;
#endif
  for (; i < n; ++i) dst[i] = to_bf16(src[i]);
}

// n floats -> n floats rounded to bf16 (RNE).
inline void round_to_bf16_f32(const float* src, int64_t n, float* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, round_to_bf16_x16(_mm512_loadu_ps(src + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, m, round_to_bf16_x16(_mm512_maskz_loadu_ps(m, src + i)));
  }
  return;
#elif defined(__AVX2__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, round_to_bf16_x8(_mm256_loadu_ps(src + i)));
#endif
  for (; i < n; ++i) dst[i] = round_to_bf16(src[i]);
}

// A grow-only 64-byte aligned buffer owned by one thread (OpenMP keeps its workers alive, so
// packing scratch is allocated once per thread, not per call).
class ThreadScratch {
 public:
  ThreadScratch() = default;
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;
  ~ThreadScratch() { std::free(ptr_); }
  void* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(ptr_);
      cap_ = (bytes + 4095) & ~size_t(4095);
      ptr_ = std::aligned_alloc(64, cap_);
      if (!ptr_) {
        std::fprintf(stderr, "error: out of memory for %zu bytes of GEMM scratch\n", cap_);
        std::abort();
      }
    }
    return ptr_;
  }

 private:
  void* ptr_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
