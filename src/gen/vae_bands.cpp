#include "gen/vae_bands.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis::vae_bands {

namespace {

std::atomic<size_t> g_band_bytes{size_t(32) << 20};

constexpr int64_t kParallelMin = 1 << 15;

// y = conv(P(x)) for a stride-1 kxk conv with padding k/2, where the conv input P(x) is
// [C, H, W] and make_band(a, b) returns its rows [a, b) as a contiguous [C, b - a, W].
template <class MakeBand>
Tensor banded(int64_t C, int64_t H, int64_t W, const Tensor& w, const Tensor& b,
              MakeBand make_band) {
  OVIS_ASSERT(w.ndim() == 4 && w.dim(1) == C && w.dim(2) == w.dim(3) && w.dim(2) % 2 == 1);
  const int64_t O = w.dim(0), halo = w.dim(2) / 2;
  const int64_t rows = std::clamp<int64_t>(int64_t(g_band_bytes.load()) / (C * W * 4), 1, H);
  ops::Conv2dParams p;
  p.pad_left = p.pad_right = int(halo);
  if (rows >= H) {
    p.pad_top = p.pad_bottom = int(halo);
    return ops::conv2d(make_band(0, H), w, &b, p);
  }
  Tensor y = Tensor::empty({O, H, W});
  float* yp = y.f32();
  for (int64_t r0 = 0; r0 < H; r0 += rows) {
    const int64_t r1 = std::min(H, r0 + rows);
    const int64_t a = std::max<int64_t>(0, r0 - halo), e = std::min(H, r1 + halo);
    p.pad_top = int(halo - (r0 - a));
    p.pad_bottom = int(halo - (e - r1));
    const Tensor out = ops::conv2d(make_band(a, e), w, &b, p);
    OVIS_ASSERT(out.dim(1) == r1 - r0 && out.dim(2) == W);
    const float* op = out.f32();
    const int64_t n = (r1 - r0) * W;
#pragma omp parallel for schedule(static) if (O * n > kParallelMin)
    for (int64_t o = 0; o < O; ++o) std::memcpy(yp + (o * H + r0) * W, op + o * n, size_t(n) * 4);
  }
  return y;
}

}  // namespace

void set_band_bytes(size_t bytes) {
  g_band_bytes = std::max<size_t>(bytes, 1);
}
size_t band_bytes() {
  return g_band_bytes;
}

GroupStats group_stats(const Tensor& x, int groups, float eps) {
  OVIS_ASSERT(x.ndim() == 3 && x.dim(0) % groups == 0);
  const int64_t C = x.dim(0), HW = x.dim(1) * x.dim(2), n = (C / groups) * HW;
  GroupStats s{std::vector<float>(size_t(groups)), std::vector<float>(size_t(groups))};
  const float* xp = x.f32();
#pragma omp parallel for schedule(static) if (C * HW > kParallelMin)
  for (int64_t g = 0; g < groups; ++g) {
    const float* r = xp + g * n;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += r[i];
    const double mean = sum / double(n);
    double v = 0;
    for (int64_t i = 0; i < n; ++i) v += (r[i] - mean) * (r[i] - mean);
    s.inv_std[g] = float(1.0 / std::sqrt(v / double(n) + eps));
    s.mean[g] = float(mean);
  }
  return s;
}

Tensor norm_silu_conv(const Tensor& x, const GroupStats& s, const Tensor& norm_w,
                      const Tensor& norm_b, const Tensor& w, const Tensor& b) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const int64_t cpg = C / int64_t(s.mean.size());
  const Tensor nw = ops::weight_f32(norm_w), nb = ops::weight_f32(norm_b);
  const float* xp = x.f32();
  return banded(C, H, W, w, b, [&](int64_t a, int64_t e) {
    Tensor band = Tensor::empty({C, e - a, W});
    float* bp = band.f32();
    const int64_t n = (e - a) * W;
#pragma omp parallel for schedule(static) if (C * n > kParallelMin)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t g = c / cpg;
      // Same arithmetic as ops::group_norm followed by ops::silu_.
      const float scale = s.inv_std[g] * nw.f32()[c], shift = nb.f32()[c], m = s.mean[g];
      const float* src = xp + (c * H + a) * W;
      float* dst = bp + c * n;
      for (int64_t i = 0; i < n; ++i) {
        const float v = (src[i] - m) * scale + shift;
        dst[i] = v / (1.0f + std::exp(-v));
      }
    }
    return band;
  });
}

Tensor upsample_conv(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const float* xp = x.f32();
  return banded(C, 2 * H, 2 * W, w, b, [&](int64_t a, int64_t e) {
    Tensor band = Tensor::empty({C, e - a, 2 * W});
    float* bp = band.f32();
#pragma omp parallel for collapse(2) schedule(static) if (C * (e - a) * W > kParallelMin)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t r = a; r < e; ++r) {
        const float* src = xp + (c * H + r / 2) * W;
        float* dst = bp + (c * (e - a) + r - a) * 2 * W;
        for (int64_t i = 0; i < W; ++i) dst[2 * i] = dst[2 * i + 1] = src[i];
      }
    return band;
  });
}

Tensor conv(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const float* xp = x.f32();
  return banded(C, H, W, w, b, [&](int64_t a, int64_t e) {
    if (a == 0 && e == H) return x;
    Tensor band = Tensor::empty({C, e - a, W});
    const int64_t n = (e - a) * W;
#pragma omp parallel for schedule(static) if (C * n > kParallelMin)
    for (int64_t c = 0; c < C; ++c)
      std::memcpy(band.f32() + c * n, xp + (c * H + a) * W, size_t(n) * 4);
    return band;
  });
}

}  // namespace ovis::vae_bands
