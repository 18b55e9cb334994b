// The dispatched CPU kernels (ops/cpu/kernels) against naive double-precision references, at
// many shapes with odd tails. CTest runs this binary once per ISA level with OVIS_CPU_ISA set
// (see CMakeLists.txt); a level the CPU lacks skips itself. Without the variable it tests the
// best level of this CPU.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/dtype.hpp"
#include "core/quant_blocks.hpp"
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/cpu/kernels/quant.hpp"
#include "ops/cpu/kernels/work_pool.hpp"

using namespace ovis;
namespace kernels = ovis::ops::cpu::kernels;
using kernels::Isa;
using kernels::WeightLayout;

namespace {

std::vector<float> randn(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = f32_to_bf16(v[i]);
  return r;
}

// The level this process was asked to test (OVIS_CPU_ISA), or the CPU's best.
Isa requested_isa() {
  const char* env = std::getenv("OVIS_CPU_ISA");
  Isa isa = kernels::cpu_isa();
  if (env && *env) {
    EXPECT_TRUE(kernels::parse_isa(env, &isa)) << env;
  }
  return isa;
}

class CpuKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    const Isa want = requested_isa();
    if (int(want) > int(kernels::cpu_isa()))
      GTEST_SKIP() << "this CPU lacks " << kernels::isa_name(want) << " (has "
                   << kernels::isa_name(kernels::cpu_isa()) << ")";
    ASSERT_EQ(kernels::active_isa(), want);
  }
};

struct GemmCase {
  int64_t M, N, K;
  bool bias = false;
  WeightLayout layout = WeightLayout::NK;
  int threads = 1;
  int64_t pad = 0;  // extra elements at the end of every row of a, w and c
};

std::string describe(const GemmCase& t) {
  return "M=" + std::to_string(t.M) + " N=" + std::to_string(t.N) + " K=" + std::to_string(t.K) +
         (t.bias ? " bias" : "") + (t.layout == WeightLayout::KN ? " KN" : " NK") +
         " threads=" + std::to_string(t.threads) + " pad=" + std::to_string(t.pad);
}

// Runs gemm_bf16 and compares with Σ bf16(a)·w (+ bias) in double. Float accumulation of K
// exact products is within (K + 2)·2⁻²³·Σ|a·w| of it.
void check_gemm(const GemmCase& t, uint32_t seed) {
  SCOPED_TRACE(describe(t));
  const int64_t lda = t.K + t.pad, ldc = t.N + t.pad;
  const bool kn = t.layout == WeightLayout::KN;
  const int64_t ldw = (kn ? t.N : t.K) + t.pad, wrows = kn ? t.K : t.N;
  const std::vector<float> a = randn(t.M * lda, seed);
  const std::vector<uint16_t> w = to_bf16(randn(wrows * ldw, seed + 1, 0.5f));
  const std::vector<float> bias = randn(t.N, seed + 2);
  const float sentinel = 1234.5f;
  std::vector<float> c(static_cast<size_t>(t.M * ldc), sentinel);
  kernels::gemm_bf16(t.M, t.N, t.K, a.data(), lda, w.data(), ldw, t.layout,
                     t.bias ? bias.data() : nullptr, c.data(), ldc, t.threads);
  int64_t bad = 0;
  for (int64_t m = 0; m < t.M; ++m) {
    for (int64_t n = 0; n < t.N; ++n) {
      double s = t.bias ? bias[n] : 0.0, mag = std::fabs(s);
      for (int64_t k = 0; k < t.K; ++k) {
        const double p = double(bf16_to_f32(f32_to_bf16(a[m * lda + k]))) *
                         bf16_to_f32(kn ? w[k * ldw + n] : w[n * ldw + k]);
        s += p;
        mag += std::fabs(p);
      }
      const double tol = double(t.K + 2) * std::ldexp(mag, -23) + 1e-30;
      const float got = c[m * ldc + n];
      if (!(std::fabs(got - s) <= tol) && bad++ < 5)
        ADD_FAILURE() << "c[" << m << "," << n << "] = " << got << ", expected " << s << " ± "
                      << tol;
    }
    for (int64_t n = t.N; n < ldc; ++n)
      if (c[m * ldc + n] != sentinel && bad++ < 5)
        ADD_FAILURE() << "wrote past N at c[" << m << "," << n << "]";
  }
  EXPECT_EQ(bad, 0);
}

TEST_F(CpuKernels, ReportsTheRequestedVariant) {
  const Isa isa = kernels::active_isa();
  const std::string variant = kernels::kernel_variant();
  // No AMX GEMM: AMX CPUs run the AVX512-BF16 kernels.
  const std::string expected = isa == Isa::Amx ? "avx512bf16" : kernels::isa_name(isa);
  EXPECT_EQ(variant, expected);
}

TEST_F(CpuKernels, SetActiveIsaCapsAtTheCpuAndRestores) {
  const Isa before = kernels::active_isa();
  EXPECT_EQ(kernels::set_active_isa(Isa::Generic), before);
  EXPECT_EQ(kernels::active_isa(), Isa::Generic);
  EXPECT_STREQ(kernels::kernel_variant(), "generic");
  kernels::set_active_isa(Isa::Amx);
  EXPECT_EQ(kernels::active_isa(), kernels::cpu_isa());
  kernels::set_active_isa(before);
  EXPECT_EQ(kernels::active_isa(), before);
}

TEST_F(CpuKernels, ParseIsaNames) {
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512, Isa::Avx512Bf16, Isa::Amx}) {
    Isa parsed;
    ASSERT_TRUE(kernels::parse_isa(kernels::isa_name(isa), &parsed));
    EXPECT_EQ(parsed, isa);
  }
  Isa parsed;
  EXPECT_FALSE(kernels::parse_isa("avx1024", &parsed));
}

// Bit-identical to f32_to_bf16 on every exponent and sign, with the rounding-relevant low bits
// swept (ties to even and odd, just above and below), NaN payloads, infinities and denormals.
TEST_F(CpuKernels, ConvertF32ToBf16IsBitExact) {
  std::vector<uint32_t> bits;
  const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0x4000, 0xc000};
  for (uint32_t hi = 0; hi < 0x10000; ++hi)
    for (uint32_t lo : lows) bits.push_back((hi << 16) | lo);
  std::mt19937 g(5);
  for (int i = 0; i < 200000; ++i) bits.push_back(g());
  std::vector<float> src(bits.size());
  std::memcpy(src.data(), bits.data(), bits.size() * 4);
  for (int threads : {1, 2}) {
    // Odd offsets and lengths exercise the masked tails.
    for (int64_t off : {0, 3}) {
      const int64_t n = int64_t(src.size()) - off - 5;
      std::vector<uint16_t> dst(static_cast<size_t>(n), 0xdead);
      kernels::convert_f32_to_bf16(n, src.data() + off, dst.data(), threads);
      int64_t bad = 0;
      for (int64_t i = 0; i < n; ++i)
        if (dst[i] != f32_to_bf16(src[off + i]) && bad++ < 5)
          ADD_FAILURE() << std::hex << "bits " << bits[off + i] << " -> " << dst[i] << ", expected "
                        << f32_to_bf16(src[off + i]);
      EXPECT_EQ(bad, 0);
    }
  }
}

// With a one-column identity weight the GEMM returns the rounded activations themselves, so
// the rounding inside the packing is checked exactly (normal values and infinities; NaN stays
// NaN).
TEST_F(CpuKernels, GemmRoundsActivationsToNearestEven) {
  std::vector<uint32_t> bits;
  for (uint32_t e : {0x3f800000u, 0x40490000u, 0xc2f60000u, 0x7f7f0000u, 0x00800000u})
    for (uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x18000u})
      bits.push_back(e + lo);
  bits.push_back(0x7f7fffffu);  // rounds up to infinity
  bits.push_back(0xff800000u);
  bits.push_back(0x7fc01234u);
  std::vector<float> a(bits.size());
  std::memcpy(a.data(), bits.data(), bits.size() * 4);
  const int64_t M = int64_t(a.size());
  const uint16_t one = 0x3f80;
  for (int64_t m_rows : {int64_t(1), M}) {
    std::vector<float> c(static_cast<size_t>(m_rows));
    for (int64_t m0 = 0; m0 < M; m0 += m_rows) {
      const int64_t rows = std::min(m_rows, M - m0);
      kernels::gemm_bf16(rows, 1, 1, a.data() + m0, 1, &one, 1, WeightLayout::NK, nullptr, c.data(),
                         1, 1);
      for (int64_t i = 0; i < rows; ++i) {
        const float want = bf16_to_f32(f32_to_bf16(a[m0 + i]));
        if (std::isnan(want))
          EXPECT_TRUE(std::isnan(c[i])) << std::hex << bits[m0 + i];
        else
          EXPECT_EQ(c[i], want) << std::hex << "bits " << bits[m0 + i];
      }
    }
  }
}

TEST_F(CpuKernels, GemmSmallShapesWithTails) {
  uint32_t seed = 1;
  for (int64_t M = 1; M <= 7; ++M)
    for (int64_t N : {1, 5, 16, 17, 33, 64, 65, 100})
      for (int64_t K : {1, 2, 3, 17, 32, 33, 70})
        check_gemm({M, N, K, (M + N + K) % 2 == 0, WeightLayout::NK, 1, 0}, seed++);
}

TEST_F(CpuKernels, GemmWeightLayoutKN) {
  uint32_t seed = 100;
  for (int64_t M : {1, 3, 6, 13})
    for (int64_t N : {1, 17, 64, 90})
      for (int64_t K : {1, 5, 32, 33, 130})
        check_gemm({M, N, K, N % 2 == 1, WeightLayout::KN, 1, 0}, seed++);
}

TEST_F(CpuKernels, GemmStridedRows) {
  check_gemm({5, 70, 45, true, WeightLayout::NK, 2, 3}, 200);
  check_gemm({37, 70, 45, false, WeightLayout::NK, 2, 3}, 201);
  check_gemm({37, 33, 300, true, WeightLayout::KN, 2, 5}, 202);
  check_gemm({2, 19, 9, true, WeightLayout::NK, 1, 1}, 203);  // M <= 4, not contiguous
}

// Crosses every cache block boundary (K > KC, M > MC, N > NC) and thread splits over M and N.
TEST_F(CpuKernels, GemmBlockBoundariesAndThreads) {
  check_gemm({13, 70, 600, true, WeightLayout::NK, 1, 0}, 300);
  check_gemm({400, 37, 300, true, WeightLayout::NK, 2, 0}, 301);
  check_gemm({9, 3100, 19, false, WeightLayout::NK, 2, 0}, 302);
  check_gemm({9, 3100, 19, true, WeightLayout::KN, 3, 0}, 303);
  check_gemm({128, 200, 513, true, WeightLayout::NK, 3, 0}, 304);
  check_gemm({129, 130, 257, false, WeightLayout::KN, 4, 0}, 305);
  check_gemm({50, 8, 64, true, WeightLayout::NK, 2, 0}, 306);      // N too small to split
  check_gemm({1100, 150, 70, true, WeightLayout::NK, 1, 0}, 307);  // several M blocks
  check_gemm({1100, 131, 40, false, WeightLayout::KN, 2, 0}, 308);
  check_gemm({2047, 70, 33, true, WeightLayout::NK, 1, 0}, 309);  // M blocks of exactly kMC
  // K blocks of the AVX512-BF16 level (equal blocks of at most 1024: 2 x 552, 3 x 704) and its
  // M blocks (8190 rows); every level splits these differently, all must agree.
  check_gemm({70, 150, 1100, true, WeightLayout::NK, 2, 0}, 310);
  check_gemm({33, 90, 2100, false, WeightLayout::KN, 3, 1}, 311);
  check_gemm({8200, 70, 40, true, WeightLayout::NK, 2, 0}, 312);
  // Activations packed in row groups of <= 32 MiB (several groups at K = 7700 on every level).
  check_gemm({2300, 20, 7700, true, WeightLayout::NK, 2, 0}, 313);
}

// Threads claim column blocks and row parts of C dynamically; every element is computed the same
// way whatever the split, so any thread count gives bit-identical results.
TEST_F(CpuKernels, GemmResultsDoNotDependOnThreads) {
  struct Shape3 {
    int64_t M, N, K;
  };
  uint32_t seed = 350;
  for (const Shape3& s : {Shape3{700, 1100, 300}, Shape3{2000, 130, 70}, Shape3{37, 4100, 90},
                          Shape3{1300, 520, 260}}) {
    const std::vector<float> a = randn(s.M * s.K, seed++);
    const std::vector<uint16_t> w = to_bf16(randn(s.N * s.K, seed++, 0.5f));
    const std::vector<float> bias = randn(s.N, seed++);
    std::vector<float> one(static_cast<size_t>(s.M * s.N));
    kernels::gemm_bf16(s.M, s.N, s.K, a.data(), s.K, w.data(), s.K, WeightLayout::NK, bias.data(),
                       one.data(), s.N, 1);
    for (int threads : {2, 3, 5}) {
      std::vector<float> many(one.size(), -1.0f);
      kernels::gemm_bf16(s.M, s.N, s.K, a.data(), s.K, w.data(), s.K, WeightLayout::NK, bias.data(),
                         many.data(), s.N, threads);
      EXPECT_EQ(many, one) << s.M << "x" << s.N << "x" << s.K << " threads=" << threads;
    }
  }
}

TEST_F(CpuKernels, GemmDegenerateShapes) {
  const std::vector<float> a(16, 1.0f), bias = {1.5f, -2.0f, 3.0f};
  const std::vector<uint16_t> w(16, 0x3f80);
  std::vector<float> c(6, 7.0f);
  kernels::gemm_bf16(2, 3, 0, a.data(), 0, w.data(), 0, WeightLayout::NK, bias.data(), c.data(), 3,
                     2);  // K = 0: c = bias
  EXPECT_EQ(c, (std::vector<float>{1.5f, -2.0f, 3.0f, 1.5f, -2.0f, 3.0f}));
  kernels::gemm_bf16(2, 3, 0, a.data(), 0, w.data(), 0, WeightLayout::NK, nullptr, c.data(), 3, 2);
  EXPECT_EQ(c, std::vector<float>(6, 0.0f));
  std::vector<float> untouched(6, 7.0f);
  kernels::gemm_bf16(0, 3, 4, a.data(), 4, w.data(), 4, WeightLayout::NK, nullptr, untouched.data(),
                     3, 2);
  kernels::gemm_bf16(2, 0, 4, a.data(), 4, w.data(), 4, WeightLayout::NK, nullptr, untouched.data(),
                     3, 2);
  EXPECT_EQ(untouched, std::vector<float>(6, 7.0f));
}

// GEMV references: bf16 rounds x, w16 keeps x in f32 (weights widen exactly in both).
void check_gemv(int64_t M, int64_t N, int64_t K, bool bf16, bool f16, bool use_bias, int threads,
                uint32_t seed) {
  SCOPED_TRACE("M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K) +
               (bf16  ? " bf16"
                : f16 ? " w16(f16)"
                      : " w16(bf16)") +
               " threads=" + std::to_string(threads));
  const std::vector<float> x = randn(M * K, seed), bias = randn(N, seed + 1);
  const std::vector<float> wf = randn(N * K, seed + 2, 0.5f);
  std::vector<uint16_t> w(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) w[i] = f16 ? f32_to_f16(wf[i]) : f32_to_bf16(wf[i]);
  std::vector<float> y(static_cast<size_t>(M * N), 1234.5f);
  const float* b = use_bias ? bias.data() : nullptr;
  if (bf16)
    kernels::gemv_bf16(M, N, K, x.data(), w.data(), b, y.data(), threads);
  else
    kernels::gemv_w16(M, N, K, x.data(), w.data(), f16, b, y.data(), threads);
  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b ? b[n] : 0.0, mag = std::fabs(s);
      for (int64_t k = 0; k < K; ++k) {
        const double xv = bf16 ? bf16_to_f32(f32_to_bf16(x[m * K + k])) : x[m * K + k];
        const double wv = f16 ? f16_to_f32(w[n * K + k]) : bf16_to_f32(w[n * K + k]);
        s += xv * wv;
        mag += std::fabs(xv * wv);
      }
      const double tol = double(K + 2) * std::ldexp(mag, -23) + 1e-30;
      if (!(std::fabs(y[m * N + n] - s) <= tol) && bad++ < 5)
        ADD_FAILURE() << "y[" << m << "," << n << "] = " << y[m * N + n] << ", expected " << s;
    }
  EXPECT_EQ(bad, 0);
}

TEST_F(CpuKernels, GemvBf16) {
  uint32_t seed = 400;
  for (int64_t M = 1; M <= 6; ++M)
    for (int64_t N : {1, 3, 4, 5, 17, 64})
      for (int64_t K : {1, 7, 31, 32, 33, 100, 1000})
        check_gemv(M, N, K, true, false, (N + K) % 2 == 0, 1, seed++);
  // Large enough to run on several threads.
  check_gemv(1, 1029, 300, true, false, true, 2, seed++);
  check_gemv(3, 1029, 300, true, false, false, 3, seed++);
}

TEST_F(CpuKernels, GemvW16) {
  uint32_t seed = 600;
  for (bool f16 : {false, true})
    for (int64_t M = 1; M <= 5; ++M)
      for (int64_t N : {1, 4, 5, 17})
        for (int64_t K : {1, 7, 31, 32, 33, 100})
          check_gemv(M, N, K, false, f16, (N + K) % 2 == 1, 1, seed++);
  check_gemv(2, 1029, 300, false, true, true, 2, seed++);
  check_gemv(4, 1029, 300, false, false, true, 2, seed++);
}

// A group (q/k/v-like outputs of different widths over one x) gives every output bit-identical to
// its own GEMV call, which check_gemv ties to the naive reference.
void check_gemv_group(int64_t M, int64_t K, const std::vector<int64_t>& widths, bool bf16, bool f16,
                      int threads, uint32_t seed) {
  SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K) + (bf16 ? " bf16" : " w16") +
               " outputs=" + std::to_string(widths.size()) + " threads=" + std::to_string(threads));
  const std::vector<float> x = randn(M * K, seed);
  std::vector<std::vector<uint16_t>> w;
  std::vector<std::vector<float>> bias, y, want;
  std::vector<kernels::GemvOut> outs;
  for (size_t j = 0; j < widths.size(); ++j) {
    const int64_t n = widths[j];
    const std::vector<float> wf = randn(n * K, seed + 10 + uint32_t(j), 0.5f);
    w.emplace_back(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) w[j][i] = f16 ? f32_to_f16(wf[i]) : f32_to_bf16(wf[i]);
    bias.push_back(randn(n, seed + 20 + uint32_t(j)));
    y.emplace_back(static_cast<size_t>(M * n), 1234.5f);
    want.emplace_back(static_cast<size_t>(M * n), -1.0f);
  }
  for (size_t j = 0; j < widths.size(); ++j) {
    const float* b = j % 2 == 0 ? bias[j].data() : nullptr;
    outs.push_back({w[j].data(), b, y[j].data(), widths[j]});
    if (bf16)
      kernels::gemv_bf16(M, widths[j], K, x.data(), w[j].data(), b, want[j].data(), 1);
    else
      kernels::gemv_w16(M, widths[j], K, x.data(), w[j].data(), f16, b, want[j].data(), 1);
  }
  if (bf16)
    kernels::gemv_group_bf16(M, K, x.data(), outs.data(), int(outs.size()), threads);
  else
    kernels::gemv_group_w16(M, K, x.data(), outs.data(), int(outs.size()), f16, threads);
  for (size_t j = 0; j < widths.size(); ++j) EXPECT_EQ(y[j], want[j]) << "output " << j;
}

TEST_F(CpuKernels, GemvGroupMatchesSeparateCalls) {
  uint32_t seed = 800;
  for (int threads : {1, 2, 3})
    for (int64_t M : {1, 2, 5}) {
      check_gemv_group(M, 300, {1029, 517, 517}, true, false, threads, seed++);
      check_gemv_group(M, 64, {3, 17, 1, 40}, true, false, threads, seed++);
      check_gemv_group(M, 300, {777, 1029}, false, false, threads, seed++);
      check_gemv_group(M, 33, {100}, false, true, threads, seed++);
    }
  // Large enough for many chunks per thread.
  check_gemv_group(1, 2048, {2048, 1024, 1024}, true, false, 2, seed++);
}

// w[N, K] packed for this level, in 64-byte aligned storage of its own.
struct PackedCopy {
  std::vector<char> storage;
  void* data;
  PackedCopy(int64_t N, int64_t K, const std::vector<uint16_t>& w, int threads)
      : storage(size_t(kernels::packed_bf16_bytes(N, K)) + 64) {
    data = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
    kernels::pack_bf16(N, K, w.data(), data, threads);
  }
};

// A weight packed at bind time (levels with a packed layout) gives bit-identical GEMM results
// to the stored weight, and the packed GEMV (M <= 4) the same rows as the packed GEMM.
TEST_F(CpuKernels, PackedWeightsMatchTheStoredWeight) {
  if (kernels::packed_bf16_bytes(64, 64) == 0)
    GTEST_SKIP() << kernels::kernel_variant() << " has no packed weight layout";
  struct Case {
    int64_t M, N, K;
    int threads;
  };
  uint32_t seed = 900;
  for (const Case& t : {Case{37, 70, 300, 1}, Case{130, 200, 1100, 2}, Case{9, 64, 33, 3},
                        Case{200, 130, 2100, 2}, Case{5, 3, 7, 1}}) {
    SCOPED_TRACE("M=" + std::to_string(t.M) + " N=" + std::to_string(t.N) +
                 " K=" + std::to_string(t.K) + " threads=" + std::to_string(t.threads));
    const std::vector<float> a = randn(t.M * t.K, seed++);
    const std::vector<uint16_t> w = to_bf16(randn(t.N * t.K, seed++, 0.5f));
    const std::vector<float> bias = randn(t.N, seed++);
    const PackedCopy pw(t.N, t.K, w, t.threads);
    const void* packed = pw.data;
    for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
      std::vector<float> want(size_t(t.M * t.N)), got(want.size(), -1.0f);
      kernels::gemm_bf16(t.M, t.N, t.K, a.data(), t.K, w.data(), t.K, WeightLayout::NK, b,
                         want.data(), t.N, t.threads);
      kernels::gemm_bf16_packed(t.M, t.N, t.K, a.data(), packed, b, got.data(), t.threads);
      if (t.M > 4) {
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
        // The packed GEMV: the first rows of the packed GEMM, bit for bit.
        for (int64_t m = 1; m <= 4; ++m) {
          std::vector<float> rows(size_t(m * t.N), -1.0f);
          kernels::gemm_bf16_packed(m, t.N, t.K, a.data(), packed, b, rows.data(), t.threads);
          ASSERT_EQ(0, std::memcmp(got.data(), rows.data(), rows.size() * sizeof(float)))
              << m << " rows";
        }
      } else {
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_NEAR(got[i], want[i], 1e-4f * (1.0f + std::fabs(want[i]))) << "element " << i;
      }
    }
  }
}

TEST_F(CpuKernels, PackedGemvGroupMatchesSeparateCalls) {
  if (kernels::packed_bf16_bytes(64, 64) == 0)
    GTEST_SKIP() << kernels::kernel_variant() << " has no packed weight layout";
  const int64_t K = 2050;
  const std::vector<int64_t> widths = {2048, 1000, 70};
  std::vector<PackedCopy> copies;
  std::vector<void*> packed;
  copies.reserve(widths.size());  // data points into each copy's storage
  uint32_t seed = 950;
  for (int64_t n : widths) {
    copies.emplace_back(n, K, to_bf16(randn(n * K, seed++, 0.5f)), 2);
    packed.push_back(copies.back().data);
  }
  const std::vector<float> bias = randn(2048, seed++);
  for (int64_t M : {1, 3, 6}) {
    const std::vector<float> x = randn(M * K, seed++);
    std::vector<std::vector<float>> y, want;
    std::vector<kernels::PackedOut> outs;
    for (size_t j = 0; j < widths.size(); ++j) {
      y.emplace_back(size_t(M * widths[j]), -1.0f);
      want.emplace_back(size_t(M * widths[j]));
      kernels::gemm_bf16_packed(M, widths[j], K, x.data(), packed[j],
                                j == 1 ? bias.data() : nullptr, want[j].data(), 1);
      outs.push_back({packed[j], j == 1 ? bias.data() : nullptr, y[j].data(), widths[j]});
    }
    kernels::gemv_group_bf16_packed(M, K, x.data(), outs.data(), int(outs.size()), 2);
    for (size_t j = 0; j < widths.size(); ++j)
      EXPECT_EQ(0, std::memcmp(y[j].data(), want[j].data(), y[j].size() * sizeof(float)))
          << "M=" << M << " output " << j;
  }
}

// ---- Row math (kernels.hpp "Row math") against double-precision definitions ----

// Lengths around both vector widths, so every level runs its full vectors and its tails.
const int64_t kRowLengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1001};

TEST_F(CpuKernels, XSigmoidRowsMatchSiluAndGeluTanh) {
  std::vector<float> x = randn(1100, 60, 4.0f), u = randn(1100, 61);
  x[0] = -120.0f, x[1] = 120.0f, x[2] = -9.0f, x[3] = 0.0f, x[4] = 88.0f, x[5] = -88.0f;
  for (bool gelu : {false, true})
    for (bool gated : {false, true})
      for (int64_t n : kRowLengths) {
        std::vector<float> o(static_cast<size_t>(n + 4), -7.0f);
        kernels::x_sigmoid(gelu, x.data() + 3, gated ? u.data() + 3 : nullptr, o.data(), n);
        double err = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double v = x[3 + i];
          const double y =
              gelu ? 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))
                   : v / (1 + std::exp(-v));
          const double ref = gated ? y * u[3 + i] : y;
          err = std::max(err, std::abs(o[i] - ref) / std::max(1.0, std::abs(ref)));
        }
        EXPECT_LT(err, 1e-6) << "gelu=" << gelu << " gated=" << gated << " n=" << n;
        for (int64_t i = n; i < n + 4; ++i) EXPECT_EQ(o[i], -7.0f) << "wrote past n=" << n;
        // In place (o aliases x): the same values.
        std::vector<float> in(x.begin() + 3, x.begin() + 3 + n);
        kernels::x_sigmoid(gelu, in.data(), gated ? u.data() + 3 : nullptr, in.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(in[i], o[i]) << "in place, n=" << n;
      }
}

TEST_F(CpuKernels, SoftmaxRowMatchesDefinition) {
  for (int64_t n : {1, 5, 8, 16, 17, 100, 20007}) {
    const std::vector<float> r = randn(n, 62 + n, 6.0f);
    std::vector<float> p(r.begin(), r.end());
    p.push_back(-7.0f);
    kernels::softmax_row(p.data(), n);
    double mx = -INFINITY, z = 0, err = 0, total = 0;
    for (float v : r) mx = std::max(mx, double(v));
    for (float v : r) z += std::exp(v - mx);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = std::exp(r[i] - mx) / z;
      err = std::max(err, std::abs(p[i] - ref) / ref);
      total += p[i];
    }
    // fp32 rounding of r − max (|r − max| up to ~60 here) alone gives ~60·2^-24 relative.
    EXPECT_LT(err, 1e-5) << "n=" << n;
    EXPECT_NEAR(total, 1.0, 1e-5) << "n=" << n;
    EXPECT_EQ(p[n], -7.0f) << "wrote past n=" << n;
  }
}

TEST_F(CpuKernels, AttentionScoreRowsMatchDefinition) {
  const float scale = 0.088f;
  for (int64_t n : kRowLengths) {
    std::vector<float> s = randn(n + 4, 63 + n, 40.0f);
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, s[j] * scale);
    EXPECT_EQ(kernels::max_scaled(s.data(), n, scale), mx) << "n=" << n;
    if (n == 0) continue;
    for (int64_t j = n; j < n + 4; ++j) s[j] = -7.0f;
    std::vector<float> e = s, eb = s;
    const float sum = kernels::exp_scaled(e.data(), n, scale, mx, false);
    double ref_sum = 0, err = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double ref = std::exp(double(s[j]) * scale - mx);
      ref_sum += ref;
      // The argument's own fp32 rounding (|s·scale − mx| up to ~25) dominates.
      err = std::max(err, std::abs(e[j] - ref) / ref);
    }
    EXPECT_LT(err, 4e-6) << "n=" << n;
    EXPECT_NEAR(sum, ref_sum, 1e-5 * ref_sum) << "n=" << n;
    for (int64_t j = n; j < n + 4; ++j) EXPECT_EQ(e[j], -7.0f) << "wrote past n=" << n;
    // With bf16 rounding: the same sum (taken before rounding), each value rounded.
    EXPECT_EQ(kernels::exp_scaled(eb.data(), n, scale, mx, true), sum) << "n=" << n;
    for (int64_t j = 0; j < n; ++j) ASSERT_EQ(eb[j], round_bf16(e[j])) << "n=" << n << " j=" << j;
  }
}

// The decode attention's per-key-row products: rows whose end is at or below j stay untouched.
TEST_F(CpuKernels, DecodeKeyScoresAndValueAccumulation) {
  const int64_t rows = 5, kv_width = 2 * 136;
  for (int64_t d : {64, 100, 128, 136}) {
    const std::vector<float> q = randn(rows * 136, 64), k = randn(kv_width, 65),
                             v = randn(kv_width, 66);
    const std::vector<int64_t> qoff = {0, 136, 272, 408, 544}, col = {0, 0, 136, 136, 136};
    const std::vector<int64_t> end = {3, 9, 2, 10, 9};
    const int64_t j = 2, ld = 3, ld_acc = d + 2;
    std::vector<float> s(static_cast<size_t>(rows * ld), -7.0f);
    kernels::key_scores(q.data(), qoff.data(), k.data(), col.data(), end.data(), j, rows, d,
                        s.data(), ld);
    std::vector<float> acc = randn(rows * ld_acc, 67), acc0 = acc;
    // Rows that do not see key j keep their score; a non-zero one there must not be added.
    for (int64_t r = 0; r < rows; ++r)
      if (end[r] <= j) {
        EXPECT_EQ(s[r * ld], -7.0f) << "score of row " << r << " written";
        s[r * ld] = 0.25f;
      }
    kernels::value_accumulate(v.data(), col.data(), end.data(), j, rows, d, s.data(), ld,
                              acc.data(), ld_acc);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 1; i < ld; ++i) EXPECT_EQ(s[r * ld + i], -7.0f);
      if (end[r] <= j) {
        EXPECT_EQ(s[r * ld], 0.25f);
        for (int64_t x = 0; x < ld_acc; ++x) ASSERT_EQ(acc[r * ld_acc + x], acc0[r * ld_acc + x]);
        continue;
      }
      double dot = 0, mag = 0;
      for (int64_t x = 0; x < d; ++x) {
        dot += double(q[qoff[r] + x]) * k[col[r] + x];
        mag += std::abs(double(q[qoff[r] + x]) * k[col[r] + x]);
      }
      EXPECT_NEAR(s[r * ld], dot, double(d) * std::ldexp(mag, -23)) << "d=" << d << " r=" << r;
      for (int64_t x = 0; x < ld_acc; ++x) {
        const double ref =
            x < d ? acc0[r * ld_acc + x] + double(s[r * ld]) * v[col[r] + x] : acc0[r * ld_acc + x];
        ASSERT_NEAR(acc[r * ld_acc + x], ref, 1e-6 * std::max(1.0, std::abs(ref)))
            << "d=" << d << " r=" << r << " x=" << x;
      }
    }
  }
}

// Every 16-bit pattern widens exactly; rounding to bf16 matches ovis::round_bf16 bit for bit
// (NaN stays NaN).
TEST_F(CpuKernels, WidenAndRoundBf16AreExact) {
  std::vector<uint16_t> h(65536 + 3);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = uint16_t(i);
  for (bool f16 : {false, true}) {
    std::vector<float> w(h.size() + 2, -7.0f);
    kernels::widen_16(h.data(), f16, int64_t(h.size()), w.data());
    for (size_t i = 0; i < h.size(); ++i) {
      const float ref = f16 ? f16_to_f32(h[i]) : bf16_to_f32(h[i]);
      if (std::isnan(ref))
        ASSERT_TRUE(std::isnan(w[i])) << std::hex << h[i];
      else
        ASSERT_EQ(std::memcmp(&w[i], &ref, 4), 0) << (f16 ? "f16 " : "bf16 ") << std::hex << h[i];
    }
    EXPECT_EQ(w[h.size()], -7.0f);
  }
  std::vector<uint32_t> bits;
  for (uint32_t hi = 0; hi < 0x10000; hi += 3)
    for (uint32_t lo : {0x0000u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu})
      bits.push_back((hi << 16) | lo);
  std::vector<float> x(bits.size()), y(bits.size() + 1, -7.0f);
  std::memcpy(x.data(), bits.data(), bits.size() * 4);
  kernels::round_bf16(x.data(), int64_t(x.size()), y.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const float ref = round_bf16(x[i]);
    if (std::isnan(ref))
      ASSERT_TRUE(std::isnan(y[i])) << std::hex << bits[i];
    else
      ASSERT_EQ(std::memcmp(&y[i], &ref, 4), 0) << std::hex << bits[i];
  }
  EXPECT_EQ(y[x.size()], -7.0f);
}

TEST(WorkPool, RunsEveryChunkOnce) {
  for (int threads : {1, 2, 4})
    for (int64_t chunks : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
      for (auto& h : hits) h = 0;
      for (int rep = 0; rep < 20; ++rep)
        kernels::parallel_chunks(threads, chunks, [&](int64_t i) { hits[size_t(i)]++; });
      for (int64_t i = 0; i < chunks; ++i)
        ASSERT_EQ(hits[size_t(i)].load(), 20) << "chunk " << i << " of " << chunks;
    }
}

TEST(WorkPool, AChunkErrorReachesTheCallerAfterEveryChunkRan) {
  std::atomic<int> ran{0};
  EXPECT_THROW(kernels::parallel_chunks(2, 50,
                                        [&](int64_t i) {
                                          ran++;
                                          if (i == 7) throw std::runtime_error("chunk 7");
                                        }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 50);
  // The pool still works afterwards.
  std::atomic<int> again{0};
  kernels::parallel_chunks(2, 10, [&](int64_t) { again++; });
  EXPECT_EQ(again.load(), 10);
}

TEST(WorkPool, NestedAndConcurrentCallsComplete) {
  // A chunk that starts another job, and two host threads sharing the pool: each call still runs
  // all of its chunks (inline when the pool is taken) before it returns.
  std::atomic<int64_t> inner{0};
  kernels::parallel_chunks(
      2, 8, [&](int64_t) { kernels::parallel_chunks(2, 5, [&](int64_t i) { inner += i + 1; }); });
  EXPECT_EQ(inner.load(), 8 * 15);
  std::atomic<int64_t> a{0}, b{0};
  auto many = [](std::atomic<int64_t>& sum) {
    for (int rep = 0; rep < 200; ++rep)
      kernels::parallel_chunks(2, 16, [&](int64_t i) { sum += i; });
  };
  std::thread t1([&] { many(a); }), t2([&] { many(b); });
  t1.join();
  t2.join();
  EXPECT_EQ(a.load(), 200 * 120);
  EXPECT_EQ(b.load(), 200 * 120);
}

}  // namespace

// Products with Q8_0 / Q4_K weights (kernels/quant.hpp) on this level against a double product of
// the same quantised values: each activation block rounded to int8 with d = max|x|/127 (round half
// to even), times the dequantised weights. Decode (M <= 4), GEMV tiled over rows, panel GEMM
// sizes (M >= 16), odd N (panel tails), biases, 1 and 2 threads; on levels with VNNI also the
// weight packed into 16-row panels (quant_pack, quant_linear_packed).
TEST_F(CpuKernels, QuantizedLinearMatchesTheReference) {
  struct Case {
    DType t;
    int64_t M, N, K;
  };
  const std::vector<Case> cases{
      {DType::Q8_0, 1, 37, 64},
      {DType::Q8_0, 3, 16, 288},
      {DType::Q8_0, 4, 100, 256},
      {DType::Q8_0, 17, 33, 96},
      {DType::Q8_0, 70, 81, 512},
      {DType::Q8_0, 5, 1, 32},
      {DType::Q4_K, 1, 37, 256},
      {DType::Q4_K, 2, 16, 512},
      {DType::Q4_K, 4, 9, 768},
      {DType::Q4_K, 19, 47, 256},
      {DType::Q4_K, 133, 64, 512},
      // Large enough (>= 128 KiB of weights) for the GEMV to split rows over the work pool.
      {DType::Q8_0, 1, 1030, 128},
      {DType::Q4_K, 3, 1030, 256},
      {DType::Q8_0, 24, 1030, 128}};
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (const Case& c : cases) {
      SCOPED_TRACE(std::string(dtype_name(c.t)) + " M=" + std::to_string(c.M) +
                   " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K) +
                   " threads=" + std::to_string(threads));
      const auto x = randn(c.M * c.K, uint32_t(c.M * 7 + c.K), 2.0f);
      const auto wv = randn(c.N * c.K, uint32_t(c.N * 3 + c.K), 0.1f);
      const auto bias = randn(c.N, 9);
      const size_t row_bytes = dtype_bytes(c.t, c.K);
      std::vector<uint8_t> w(row_bytes * size_t(c.N));
      std::vector<float> wf(wv.size());
      for (int64_t n = 0; n < c.N; ++n) {
        uint8_t* row = w.data() + size_t(n) * row_bytes;
        if (c.t == DType::Q8_0) {
          quantize_row_q8_0(wv.data() + n * c.K, reinterpret_cast<BlockQ8_0*>(row), c.K);
          dequantize_row_q8_0(reinterpret_cast<const BlockQ8_0*>(row), wf.data() + n * c.K, c.K);
        } else {
          quantize_row_q4_k(wv.data() + n * c.K, reinterpret_cast<BlockQ4_K*>(row), c.K);
          dequantize_row_q4_k(reinterpret_cast<const BlockQ4_K*>(row), wf.data() + n * c.K, c.K);
        }
      }
      std::vector<double> xq(x.size());
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t b = 0; b < c.K / 32; ++b) {
          const float* v = x.data() + m * c.K + b * 32;
          float amax = 0;
          for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
          const float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
          for (int i = 0; i < 32; ++i)
            xq[size_t(m * c.K + b * 32 + i)] = double(d) * std::nearbyint(v[i] * id);
        }
      std::vector<float> y(size_t(c.M * c.N));
      kernels::quant_linear(c.t, w.data(), c.N, c.K, x.data(), c.M, bias.data(), y.data());
      // The packed form (levels with VNNI): the same products from 16-row panels.
      const int64_t packed_bytes = kernels::quant_packed_bytes(c.t, c.N, c.K);
      std::vector<float> yp;
      if (packed_bytes > 0) {
        std::vector<char> storage(size_t(packed_bytes) + 64);
        void* wp = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64;
        kernels::quant_pack(c.t, w.data(), c.N, c.K, wp);
        yp.assign(y.size(), -1.0f);
        kernels::quant_linear_packed(c.t, wp, c.N, c.K, x.data(), c.M, bias.data(), yp.data());
      }
      double max_err = 0, max_ref = 0, max_err_packed = 0;
      for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
          double s = 0;
          for (int64_t k = 0; k < c.K; ++k) s += xq[size_t(m * c.K + k)] * double(wf[n * c.K + k]);
          const size_t i = size_t(m * c.N + n);
          max_err = std::max(max_err, std::fabs(double(y[i]) - (s + bias[n])));
          if (!yp.empty())
            max_err_packed = std::max(max_err_packed, std::fabs(double(yp[i]) - (s + bias[n])));
          max_ref = std::max(max_ref, std::fabs(s));
        }
      EXPECT_LE(max_err, 2e-5 * std::max(1.0, max_ref));
      EXPECT_LE(max_err_packed, 2e-5 * std::max(1.0, max_ref));
    }
  }
  omp_set_num_threads(saved_threads);
}
