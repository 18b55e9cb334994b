#include "nn/rope.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ovis::nn {

ops::RopeFreqs rope_freqs_1d(double theta, int dim, bool round_bf16) {
  OVIS_ASSERT(dim > 0 && dim % 2 == 0);
  ops::RopeFreqs f;
  const float th = float(theta);
  for (int j = 0; j < dim / 2; ++j) {
    f.omega.push_back(1.0f / std::pow(th, float(2 * j) / float(dim)));
    f.axis.push_back(0);
  }
  f.round_bf16 = round_bf16;
  return f;
}

ops::RopeFreqs rope_freqs_2d(double theta, int head_dim) {
  const int half = head_dim / 2, nf = half / 2;
  OVIS_ASSERT(nf > 0);
  std::vector<float> inv(static_cast<size_t>(nf));
  for (int j = 0; j < nf; ++j)
    inv[size_t(j)] = 1.0f / std::pow(float(theta), float(2 * j) / float(half));
  ops::RopeFreqs f;
  for (int axis = 0; axis < 2; ++axis)
    for (int j = 0; j < nf; ++j) {
      f.omega.push_back(inv[size_t(j)]);
      f.axis.push_back(axis);
    }
  return f;
}

ops::RopeFreqs rope_freqs_nd(const std::vector<int>& axes_dim, double theta) {
  ops::RopeFreqs f;
  f.f64_angles = true;
  for (size_t a = 0; a < axes_dim.size(); ++a) {
    const int d = axes_dim[a];
    OVIS_ASSERT(d % 2 == 0);
    for (int k = 0; k < d / 2; ++k) {
      f.omega.push_back(1.0 / std::pow(theta, double(2 * k) / double(d)));
      f.axis.push_back(int(a));
    }
  }
  return f;
}

}  // namespace ovis::nn
