#include "gen/rope_nd.hpp"

#include <cmath>

#include "core/error.hpp"

namespace ovis {

RopeTable rope_nd(const Tensor& ids, const std::vector<int>& axes_dim, double theta) {
  const int64_t L = ids.dim(0), n_axes = int64_t(axes_dim.size());
  OVIS_ASSERT(ids.ndim() == 2 && ids.dim(1) == n_axes);
  std::vector<double> omega;  // per pair, axes concatenated
  std::vector<int> axis_of;
  for (int64_t a = 0; a < n_axes; ++a) {
    const int d = axes_dim[size_t(a)];
    OVIS_ASSERT(d % 2 == 0);
    for (int k = 0; k < d / 2; ++k) {
      omega.push_back(1.0 / std::pow(theta, double(2 * k) / double(d)));
      axis_of.push_back(int(a));
    }
  }
  const int64_t pairs = int64_t(omega.size());
  RopeTable t{Tensor::empty({L, pairs}), Tensor::empty({L, pairs})};
  const float* pos = ids.f32();
  for (int64_t l = 0; l < L; ++l)
    for (int64_t p = 0; p < pairs; ++p) {
      const double angle = double(pos[l * n_axes + axis_of[size_t(p)]]) * omega[size_t(p)];
      t.cos.f32()[l * pairs + p] = float(std::cos(angle));
      t.sin.f32()[l * pairs + p] = float(std::sin(angle));
    }
  return t;
}

Tensor rope_rotation_matrices(const RopeTable& table) {
  const int64_t L = table.cos.dim(0), pairs = table.cos.dim(1);
  Tensor m = Tensor::empty({L, pairs, 2, 2});
  float* o = m.f32();
  for (int64_t i = 0; i < L * pairs; ++i) {
    const float c = table.cos.f32()[i], s = table.sin.f32()[i];
    o[4 * i + 0] = c;
    o[4 * i + 1] = -s;
    o[4 * i + 2] = s;
    o[4 * i + 3] = c;
  }
  return m;
}

}  // namespace ovis
