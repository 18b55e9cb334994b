#include "gen/rng.hpp"

#include <cmath>
#include <numbers>

namespace ovis {

Tensor gaussian_noise(const Shape& shape, uint64_t seed) {
  Tensor out = Tensor::empty(shape);
  float* o = out.mutable_f32();
  const int64_t n = out.numel();
  const int64_t blocks = (n + 3) / 4;
  const std::array<uint32_t, 2> key = {uint32_t(seed), uint32_t(seed >> 32)};
  constexpr double kInv32 = 1.0 / 4294967296.0;
  constexpr double kTwoPi = 2.0 * std::numbers::pi;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) {
    const auto r = philox4x32_10({uint32_t(b), uint32_t(uint64_t(b) >> 32), 0u, 0u}, key);
    float z[4];
    for (int pair = 0; pair < 2; ++pair) {
      const double u1 = (double(r[2 * pair]) + 0.5) * kInv32;
      const double u2 = double(r[2 * pair + 1]) * kInv32;
      const double rho = std::sqrt(-2.0 * std::log(u1));
      z[2 * pair] = float(rho * std::cos(kTwoPi * u2));
      z[2 * pair + 1] = float(rho * std::sin(kTwoPi * u2));
    }
    for (int j = 0; j < 4 && 4 * b + j < n; ++j) o[4 * b + j] = round_bf16(z[j]);
  }
  return out;
}

}  // namespace ovis
