// Rotary tables and the rotation itself.
#include <cmath>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"

namespace ovis::ops::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;

// pos(l, axis) -> position; fills the [L, pairs] tables.
template <class Pos>
RopeTable make_table(int64_t L, const RopeFreqs& f, Pos pos) {
  const int64_t P = f.pairs();
  RopeTable t{Tensor::empty({L, P}), Tensor::empty({L, P})};
  float* c = t.cos.mutable_f32();
  float* s = t.sin.mutable_f32();
  for (int64_t l = 0; l < L; ++l)
    for (int64_t p = 0; p < P; ++p) {
      float cv, sv;
      if (f.f64_angles) {
        const double angle = double(pos(l, f.axis[size_t(p)])) * f.omega[size_t(p)];
        cv = float(std::cos(angle));
        sv = float(std::sin(angle));
      } else {
        const float angle = pos(l, f.axis[size_t(p)]) * float(f.omega[size_t(p)]);
        cv = std::cos(angle);
        sv = std::sin(angle);
      }
      if (f.round_bf16) {
        cv = round_bf16(cv);
        sv = round_bf16(sv);
      }
      c[l * P + p] = cv;
      s[l * P + p] = sv;
    }
  return t;
}

}  // namespace

RopeTable CpuBackend::rope_table(const Context&, const Tensor& positions, const RopeFreqs& f) {
  const int64_t A = positions.dim(1);
  const float* pp = positions.f32();
  return make_table(positions.dim(0), f, [&](int64_t l, int a) { return pp[l * A + a]; });
}

RopeTable CpuBackend::rope_table(const Context&, int64_t start, int64_t L, const RopeFreqs& f) {
  return make_table(L, f, [&](int64_t l, int) { return float(start + l); });
}

void CpuBackend::rope_(const Context&, Tensor& x, int heads, const RopeTable& t,
                       RopeLayout layout) {
  const int64_t L = x.dim(0);
  const int64_t D = x.numel() / L / heads;
  const int64_t half = t.cos.dim(-1);
  float* p = x.mutable_f32();
  const float* cp = t.cos.f32();
  const float* sp = t.sin.f32();
#pragma omp parallel for schedule(static) if (L * heads * D > kParallelMin)
  for (int64_t l = 0; l < L; ++l) {
    const float* c = cp + l * half;
    const float* s = sp + l * half;
    for (int h = 0; h < heads; ++h) {
      float* v = p + (l * heads + h) * D;
      if (layout == RopeLayout::HalfSplit) {
        for (int64_t d = 0; d < half; ++d) {
          const float a = v[d], b = v[d + half];
          v[d] = a * c[d] - b * s[d];
          v[d + half] = b * c[d] + a * s[d];
        }
      } else {
        for (int64_t d = 0; d < half; ++d) {
          const float a = v[2 * d], b = v[2 * d + 1];
          v[2 * d] = c[d] * a - s[d] * b;
          v[2 * d + 1] = s[d] * a + c[d] * b;
        }
      }
    }
  }
}

}  // namespace ovis::ops::cpu
