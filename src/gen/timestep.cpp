#include "gen/timestep.hpp"

namespace ovis {

namespace {
constexpr float kMaxPeriod = 10000.0f;  // FLUX timestep_embedding default (§7.6)
constexpr float kTimeFactor = 1000.0f;  // t is scaled by 1000 before embedding (§7.6)
}  // namespace

Tensor timestep_embedding(const ops::Context& c, float t, int dim) {
  const bool bf16 = c.precision == ops::Precision::BF16;
  float tt = bf16 ? round_bf16(t) : t;
  tt = kTimeFactor * tt;
  if (bf16) tt = round_bf16(tt);
  return ops::timestep_embedding(c, tt, dim, kMaxPeriod);
}

}  // namespace ovis
