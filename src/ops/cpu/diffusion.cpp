// Diffusion-specific ops: the timestep embedding, the fused CFG + Euler step, and the final pixel
// conversion.
#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"

namespace ovis::ops::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;

// One reference op: rounded to bf16 in BF16 precision, never fused with its neighbours (the
// volatile store keeps the compiler from contracting a*b+c into an FMA).
struct LatentMath {
  bool bf16;
  float r(float v) const {
    volatile float s = v;
    return bf16 ? round_bf16(s) : s;
  }
};

}  // namespace

Tensor CpuBackend::timestep_embedding(const Context&, float t, int dim, float max_period) {
  const int half = dim / 2;
  // freqs = exp(−ln(max_period) · arange(half) / half): the Python double −ln(max_period) enters
  // the float32 tensor product as a float32 scalar.
  const float neg_log_period = float(-std::log(double(max_period)));
  Tensor out = Tensor::empty({1, dim});
  float* o = out.mutable_f32();
  for (int i = 0; i < half; ++i) {
    const float scaled = neg_log_period * float(i);
    const float freq = std::exp(scaled / float(half));
    const float arg = t * freq;
    o[i] = std::cos(arg);
    o[half + i] = std::sin(arg);
  }
  return out;
}

void CpuBackend::guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v,
                                    Guidance g, float s0, float s1, float dt, Tensor* guided) {
  const LatentMath lm{c.precision == Precision::BF16};
  const int64_t n = img.numel();
  float* x = img.mutable_f32();
  float* out = guided ? guided->mutable_f32() : nullptr;
  const float* vc = v[0].f32();
  const float* v1 = v[1].f32();
  const float* v2 = g == Guidance::Edit ? v[2].f32() : nullptr;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t j = 0; j < n; ++j) {
    float gj;
    if (g == Guidance::T2I) {
      // v = v_u + cfg·(v_c − v_u)
      const float cj = lm.r(vc[j]), uj = lm.r(v1[j]);
      gj = lm.r(uj + lm.r(s0 * lm.r(cj - uj)));
    } else {
      // v = v_nb + img_cfg·(v_nt − v_nb) + txt_cfg·(v_c − v_nt)
      const float cj = lm.r(vc[j]), nbj = lm.r(v1[j]), ntj = lm.r(v2[j]);
      const float img_term = lm.r(s1 * lm.r(ntj - nbj));
      const float txt_term = lm.r(s0 * lm.r(cj - ntj));
      gj = lm.r(lm.r(nbj + img_term) + txt_term);
    }
    if (out) out[j] = gj;
    x[j] = lm.r(x[j] + lm.r(dt * gj));
  }
}

Tensor CpuBackend::image_to_u8(const Context&, const Tensor& x) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor out = Tensor::empty({H, W, C}, DType::U8);
  const float* xp = x.f32();
  uint8_t* o = out.mutable_data<uint8_t>();
#pragma omp parallel for schedule(static) if (C * H * W > kParallelMin)
  for (int64_t y = 0; y < H; ++y)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < W; ++i) {
        // byte() truncates toward zero; the value is in [0, 255] after the clamp (spec §7.11).
        // NaN (a broken decode) maps to 0 rather than an undefined cast.
        const float v = (std::clamp(xp[(c * H + y) * W + i], -1.0f, 1.0f) + 1.0f) * 127.5f;
        o[(y * W + i) * C + c] = v >= 0.0f ? uint8_t(v) : uint8_t(0);
      }
  return out;
}

}  // namespace ovis::ops::cpu
