// Normalisations, all accumulated in fp32 or wider (spec §9.1-9.2).
#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"

namespace ovis::ops::cpu {

namespace {

// Mean and 1/sqrt(var + eps) of n values, two passes in float64, as every norm here computes
// them.
inline void moments(const float* r, int64_t n, float eps, float* mean_out, float* inv_out) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) s += r[i];
  const double mean = s / double(n);
  double v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t i = 0; i < n; ++i) v += (r[i] - mean) * (r[i] - mean);
  *inv_out = float(1.0 / std::sqrt(v / double(n) + eps));
  *mean_out = float(mean);
}

}  // namespace

Tensor CpuBackend::prepare_f32(const Tensor& w) {
  return w.dtype() == DType::F32 ? w : w.to_f32();
}

Tensor CpuBackend::rms_norm(const Context&, const Tensor& x, const Tensor* w, float eps) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  const float* wp = w ? w->f32() : nullptr;
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  float* yp = y.mutable_f32();
#pragma omp parallel for schedule(static) if (M * D > 16384)
  for (int64_t m = 0; m < M; ++m) {
    const float* r = xp + m * D;
    float* o = yp + m * D;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t d = 0; d < D; ++d) ss += double(r[d]) * r[d];
    float inv = 1.0f / std::sqrt(float(ss / double(D)) + eps);
    if (wp) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) o[d] = (r[d] * inv) * wp[d];
    } else {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) o[d] = r[d] * inv;
    }
  }
  return y;
}

Tensor CpuBackend::layer_norm(const Context&, const Tensor& x, const Tensor* w, const Tensor* b,
                              float eps) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  const float* wp = w ? w->f32() : nullptr;
  const float* bp = b ? b->f32() : nullptr;
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  float* yp = y.mutable_f32();
#pragma omp parallel for schedule(static) if (M * D > 16384)
  for (int64_t m = 0; m < M; ++m) {
    const float* r = xp + m * D;
    float* o = yp + m * D;
    float mf, inv;
    moments(r, D, eps, &mf, &inv);
    for (int64_t d = 0; d < D; ++d) {
      float t = (r[d] - mf) * inv;
      if (wp) t *= wp[d];
      if (bp) t += bp[d];
      o[d] = t;
    }
  }
  return y;
}

Tensor CpuBackend::group_norm_stats(const Context&, const Tensor& x, int groups, float eps) {
  const int64_t n = x.numel() / groups;
  Tensor st = Tensor::empty({groups, 2});
  const float* xp = x.f32();
  float* sp = st.mutable_f32();
#pragma omp parallel for schedule(static) if (x.numel() > (1 << 15))
  for (int64_t g = 0; g < groups; ++g) moments(xp + g * n, n, eps, sp + 2 * g, sp + 2 * g + 1);
  return st;
}

Tensor CpuBackend::group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w,
                              const Tensor& b, float eps) {
  const int64_t C = x.dim(0), HW = x.dim(1) * x.dim(2), cpg = C / groups;
  const Tensor st = group_norm_stats(c, x, groups, eps);
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  const float* sp = st.f32();
  const float *wp = w.f32(), *bp = b.f32();
  float* yp = y.mutable_f32();
#pragma omp parallel for schedule(static)
  for (int64_t ch = 0; ch < C; ++ch) {
    const int64_t g = ch / cpg;
    const float a = sp[2 * g + 1] * wp[ch], bb = bp[ch], mf = sp[2 * g];
    const float* rc = xp + ch * HW;
    float* oc = yp + ch * HW;
    for (int64_t i = 0; i < HW; ++i) oc[i] = (rc[i] - mf) * a + bb;
  }
  return y;
}

void CpuBackend::group_moments_add_(const Context&, Tensor& acc, const Tensor& x, int groups,
                                    int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2), cpg = C / groups;
  const float* xp = x.f32();
  double* ap = acc.mutable_data<double>();
#pragma omp parallel for schedule(static) if (C * H * W > (1 << 15))
  for (int64_t g = 0; g < groups; ++g) {
    double sum = 0, sq = 0;
    for (int64_t ch = g * cpg; ch < (g + 1) * cpg; ++ch)
      for (int64_t y = y0; y < y1; ++y) {
        const float* row = xp + (ch * H + y) * W;
        for (int64_t i = x0; i < x1; ++i) {
          sum += row[i];
          sq += double(row[i]) * row[i];
        }
      }
    ap[3 * g] += sum;
    ap[3 * g + 1] += sq;
    ap[3 * g + 2] += double(cpg * (y1 - y0) * (x1 - x0));
  }
}

Tensor CpuBackend::group_norm_stats_from_moments(const Context&, const Tensor& acc, float eps) {
  const int64_t groups = acc.numel() / 3;
  const double* ap = acc.data<double>();
  Tensor st = Tensor::empty({groups, 2});
  float* sp = st.mutable_f32();
  for (int64_t g = 0; g < groups; ++g) {
    OVIS_ASSERT(ap[3 * g + 2] > 0);
    const double m = ap[3 * g] / ap[3 * g + 2];
    const double var = std::max(0.0, ap[3 * g + 1] / ap[3 * g + 2] - m * m);
    // As group_norm: float(1 / sqrt(var + eps)) and float(mean).
    sp[2 * g] = float(m);
    sp[2 * g + 1] = float(1.0 / std::sqrt(var + eps));
  }
  return st;
}

}  // namespace ovis::ops::cpu
