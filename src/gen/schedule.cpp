#include "gen/schedule.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ovis {

namespace {

// One float32 operation whose result is rounded before it is used again: keeps the compiler from
// fusing a·b + c into an FMA, so the values follow the reference's separate float32 kernels.
inline float rounded(float v) {
  volatile float r = v;
  return r;
}

// torch.linspace(1, 0, n) in float32 on CPU: the first half counts up from the start, the second
// half down from the end, with step = (end − start) / (n − 1) in float32.
std::vector<float> linspace_1_to_0(int n) {
  std::vector<float> v(size_t(n), 1.0f);
  if (n == 1) return v;
  const float start = 1.0f, end = 0.0f;
  const float step = rounded((end - start) / float(n - 1));
  const int halfway = n / 2;
  for (int i = 0; i < n; ++i)
    v[size_t(i)] = i < halfway ? rounded(start + rounded(step * float(i)))
                               : rounded(end - rounded(step * float(n - i - 1)));
  return v;
}

}  // namespace

std::vector<float> flow_schedule(int steps, int64_t n_img_tokens, const DitConfig& cfg) {
  if (steps < 1) fail("flow_schedule: steps must be >= 1, got ", steps);
  std::vector<float> ts = linspace_1_to_0(steps + 1);
  if (!cfg.timestep_shift) return ts;
  // get_lin_function: Python doubles; the anchors 256 and 4096 are hard-coded upstream (§7.4).
  const double x1 = 256.0, x2 = 4096.0;
  const double m = (cfg.max_shift - cfg.base_shift) / (x2 - x1);
  const double b = cfg.base_shift - m * x1;
  const double mu = m * double(n_img_tokens) + b;
  // time_shift(mu, 1, t) = e^mu / (e^mu + (1/t − 1)^1) on a float32 tensor: the Python scalar
  // e^mu enters as float32, and `scalar / tensor` runs as reciprocal(tensor) · scalar. That is
  // why t = 1 can map to 0.99999994 (fixture README "Schedule"). t = 0 gives 1/0 = inf → 0.
  const float emu = float(std::exp(mu));
  for (float& t : ts) {
    const float inv_t = t == 0.0f ? INFINITY : rounded(1.0f / t);
    const float denom = rounded(emu + rounded(inv_t - 1.0f));
    t = rounded(rounded(1.0f / denom) * emu);
  }
  return ts;
}

}  // namespace ovis
