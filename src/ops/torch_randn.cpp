#include "ops/torch_randn.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "core/philox.hpp"

namespace ovis::ops {

namespace {
constexpr int64_t kBlock = 256;  // ATen's block_size_bound for distribution kernels
constexpr int64_t kUnroll = 4;   // curand4_engine_calls: one draw gives four normals
}  // namespace

int64_t torch_randn_threads(int64_t n, int sms, int max_threads_per_sm) {
  OVIS_ASSERT(n > 0 && sms > 0 && max_threads_per_sm >= kBlock);
  const int64_t grid =
      std::min<int64_t>((n + kBlock - 1) / kBlock, int64_t(sms) * (max_threads_per_sm / kBlock));
  return grid * kBlock;
}

void curand_box_muller_host(uint32_t a, uint32_t b, float* sin_part, float* cos_part) {
  // cuRAND's constants are float expressions: 2.3283064e-10f is exactly 2^-32, and the 2π one
  // is the float product below. nvcc contracts w·c + c/2 into one fused multiply-add.
  const float inv = 2.3283064e-10f;
  const float inv_2pi = 2.3283064e-10f * 6.2831855f;
  const float u = std::fma(float(a), inv, inv / 2);
  const float v = std::fma(float(b), inv_2pi, inv_2pi / 2);
  const float s = std::sqrt(-2.0f * float(std::log(double(u))));
  *sin_part = float(std::sin(double(v))) * s;
  *cos_part = float(std::cos(double(v))) * s;
}

void torch_randn_host(float* out, int64_t n, uint64_t seed, uint64_t offset, int64_t threads) {
  OVIS_ASSERT(offset % 4 == 0 && threads > 0);
  const std::array<uint32_t, 2> key = {uint32_t(seed), uint32_t(seed >> 32)};
  const uint64_t base = offset / 4;
  const int64_t per_round = kUnroll * threads;
  const int64_t rounds = (n + per_round - 1) / per_round;
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t t = 0; t < threads; ++t) {
    for (int64_t r = 0; r < rounds; ++r) {
      const int64_t first = r * per_round + t;
      if (first >= n) break;
      const uint64_t ctr = base + uint64_t(r);
      const auto w = philox4x32_10(
          {uint32_t(ctr), uint32_t(ctr >> 32), uint32_t(uint64_t(t)), uint32_t(uint64_t(t) >> 32)},
          key);
      float z[4];
      curand_box_muller_host(w[0], w[1], &z[0], &z[1]);
      curand_box_muller_host(w[2], w[3], &z[2], &z[3]);
      for (int64_t j = 0; j < kUnroll; ++j) {
        const int64_t e = first + j * threads;
        if (e < n) out[e] = z[j];
      }
    }
  }
}

}  // namespace ovis::ops
