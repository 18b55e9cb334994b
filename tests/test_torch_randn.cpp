// --rng torch-cuda: PyTorch's CUDA normal generator (ops/torch_randn.hpp) on the host against
// values derived independently (a separate arbitrary-precision implementation of the Philox /
// Box–Muller scheme, listed below), its launch geometry, and, when a vector recorded with torch
// on a GPU is present, against torch itself (and the CUDA backend against torch, bit for bit).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ops/ops.hpp"
#include "ops/torch_randn.hpp"
#include "support/backend.hpp"
#include "support/cuda.hpp"

using namespace ovis;

namespace {

struct Known {
  uint64_t seed;
  int64_t n;
  int64_t index;
  float value;  // the float normal before the bf16 cast
};

// Derived with exact rational arithmetic (Python fractions) from the scheme's definition, for a
// 132-SM, 2048-threads-per-SM launch. The first two also match the widely published
// torch.manual_seed(42); torch.randn(2, device="cuda") -> [0.1940, 2.1614].
const Known kKnown[] = {
    {42ull, 65536, 0, 0.1940188705921173f},
    {42ull, 65536, 1, 2.1613738536834717f},
    {42ull, 65536, 2, -0.1720506101846695f},
    {42ull, 65536, 1000, -0.23667621612548828f},
    {42ull, 65536, 65535, 0.3807421624660492f},
    // n above the thread count: element 270340 is the second normal of thread 4.
    {123456789ull, 300000, 0, 1.784683346748352f},
    {123456789ull, 300000, 5, 0.002613071585074067f},
    {123456789ull, 300000, 270340, 0.8859751224517822f},
    {123456789ull, 300000, 299999, 1.561871886253357f},
    {0ull, 7, 0, -0.9246624112129211f},
    {0ull, 7, 6, -0.622851550579071f},
};

std::vector<float> host_randn(uint64_t seed, int64_t n, int sms = ops::kTorchRandnSms,
                              int tps = ops::kTorchRandnThreadsPerSm) {
  std::vector<float> v(static_cast<size_t>(n));
  ops::torch_randn_host(v.data(), n, seed, 0, ops::torch_randn_threads(n, sms, tps));
  return v;
}

uint16_t bf16_bits(float f) {
  return f32_to_bf16(f);
}

}  // namespace

TEST(TorchRandn, LaunchGeometryFollowsATen) {
  EXPECT_EQ(ops::torch_randn_threads(1, 132, 2048), 256);
  EXPECT_EQ(ops::torch_randn_threads(65536, 132, 2048), 65536);
  EXPECT_EQ(ops::torch_randn_threads(65537, 132, 2048), 65536 + 256);
  EXPECT_EQ(ops::torch_randn_threads(300000, 132, 2048), 132 * 8 * 256);  // capped grid
  EXPECT_EQ(ops::torch_randn_threads(300000, 128, 1536), 128 * 6 * 256);  // another GPU
  // Every latent up to 2048x2048 fits in one round on the reference GPU (GPU-independent).
  EXPECT_LE(4 * 256 * 256, ops::torch_randn_threads(4 * 256 * 256, 132, 2048));
}

TEST(TorchRandn, MatchesIndependentlyDerivedValues) {
  for (const Known& k : kKnown) {
    const std::vector<float> v = host_randn(k.seed, k.n);
    EXPECT_EQ(v[size_t(k.index)], k.value) << "seed " << k.seed << " n " << k.n << " @" << k.index;
  }
}

TEST(TorchRandn, BoxMullerIsCuRandsTransform) {
  // u = 2^-32·w + 2^-33 (never 0 or 1), v likewise scaled by 2π.
  float s, c;
  ops::curand_box_muller_host(0u, 0u, &s, &c);
  // u = 2^-33: sqrt(-2 ln u) = sqrt(66 ln 2); v tiny: sin ≈ v, cos ≈ 1.
  EXPECT_NEAR(c, std::sqrt(66.0 * std::log(2.0)), 1e-5);
  EXPECT_GT(s, 0.0f);
  EXPECT_LT(s, 1e-7f);
  ops::curand_box_muller_host(0xffffffffu, 0x40000000u, &s, &c);  // u -> 1: both near 0
  EXPECT_LT(std::fabs(s), 1e-3f);
  EXPECT_LT(std::fabs(c), 1e-3f);
}

TEST(TorchRandn, ElementsDependOnlyOnSeedAndIndexBelowTheThreadCount) {
  // Below the thread count element i is the first normal of subsequence i, whatever n is.
  const std::vector<float> a = host_randn(7, 1000), b = host_randn(7, 65536);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << i;
  const std::vector<float> c = host_randn(8, 1000);
  EXPECT_NE(a[0], c[0]);
}

TEST(TorchRandn, OpReturnsBf16ValuesOfTheLatentShape) {
  const ops::Context C = test::cpu_ctx();
  const Tensor t = ops::randn_torch_cuda(C, {4, 16, 24}, 42);
  ASSERT_EQ(t.shape(), Shape({4, 16, 24}));
  const std::vector<float> v = host_randn(42, t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], round_bf16(v[size_t(i)])) << i;
  double m = 0, s2 = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    m += t.f32()[i];
    s2 += double(t.f32()[i]) * t.f32()[i];
  }
  m /= double(t.numel());
  EXPECT_NEAR(m, 0.0, 0.1);
  EXPECT_NEAR(s2 / double(t.numel()), 1.0, 0.15);
}

// The vector scripts/gpu-check.sh records with torch on a GPU (scripts/torch_randn_vector.py):
// OVIS_TORCH_RANDN_VECTOR, else tests/data/torch_cuda_randn.json once committed.
TEST(TorchRandn, MatchesTorchOnAGpuWhereRecorded) {
  std::string path;
  if (const char* env = std::getenv("OVIS_TORCH_RANDN_VECTOR")) path = env;
  if (path.empty()) path = std::string(OVIS_SOURCE_DIR) + "/tests/data/torch_cuda_randn.json";
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "no torch vector recorded yet (" << path
                 << "): run scripts/gpu-check.sh on a GPU, then commit its torch_cuda_randn.json";
  std::ifstream in(path);
  const nlohmann::json j = nlohmann::json::parse(in);
  const int sms = j["sm_count"], tps = j["max_threads_per_sm"];
  for (const auto& c : j["cases"]) {
    const uint64_t seed = c["seed"];
    const std::vector<int64_t> shape = c["shape"];
    const std::string hex = c["bf16_hex"];
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    ASSERT_EQ(int64_t(hex.size()), 4 * n);
    std::vector<uint16_t> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      want[size_t(i)] = uint16_t(std::stoul(hex.substr(4 * i, 4), nullptr, 16));
    // Host: every element within one bf16 step, differences rare (the GPU's __sincosf).
    const std::vector<float> v = host_randn(seed, n, sms, tps);
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int d = int(bf16_bits(v[size_t(i)])) - int(want[size_t(i)]);
      ASSERT_LE(std::abs(d), 1) << "seed " << seed << " @" << i;
      differ += d != 0;
    }
    std::printf("  host vs torch, seed %llu, %lld elements: %lld differ by one bf16 step\n",
                static_cast<unsigned long long>(seed), static_cast<long long>(n),
                static_cast<long long>(differ));
    EXPECT_LE(double(differ), 1e-3 * double(n));
    // The CUDA backend runs cuRAND's own code on a GPU: bit for bit (same GPU model).
    if (test::cuda_backend()) {
      const Tensor t = test::host_f32(ops::randn_torch_cuda(test::cuda_ctx(), Shape(shape), seed));
      int64_t gpu_differ = 0;
      for (int64_t i = 0; i < n; ++i) gpu_differ += bf16_bits(t.f32()[i]) != want[size_t(i)];
      EXPECT_EQ(gpu_differ, 0) << "seed " << seed;
    }
  }
}
