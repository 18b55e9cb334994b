#include "gen/timestep.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ovis {

Tensor timestep_embedding(float t, int dim, bool bf16_reference) {
  OVIS_ASSERT(dim % 2 == 0);
  const int half = dim / 2;
  float tt = bf16_reference ? round_bf16(t) : t;
  tt = 1000.0f * tt;
  if (bf16_reference) tt = round_bf16(tt);
  // freqs = exp(−ln(max_period) · arange(half) / half): the Python double −ln(10000) enters the
  // float32 tensor product as a float32 scalar.
  const float neg_log_period = float(-std::log(10000.0));
  Tensor out = Tensor::empty({1, dim});
  float* o = out.f32();
  for (int i = 0; i < half; ++i) {
    const float scaled = neg_log_period * float(i);
    const float freq = std::exp(scaled / float(half));
    const float arg = tt * freq;
    o[i] = std::cos(arg);
    o[half + i] = std::sin(arg);
  }
  return out;
}

}  // namespace ovis
