// Normalisations, all accumulated in fp32 (spec §9.1-9.2).
#include <cmath>

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

Tensor weight_f32(const Tensor& w) {
  return w.dtype() == DType::F32 ? w : w.to_f32();
}

float weight_at(const Tensor& w, int64_t i) {
  switch (w.dtype()) {
    case DType::F32:
      return w.data<float>()[i];
    case DType::BF16:
      return bf16_to_f32(w.data<uint16_t>()[i]);
    case DType::F16:
      return f16_to_f32(w.data<uint16_t>()[i]);
    default:
      fail("internal error: weight_at on ", dtype_name(w.dtype()));
  }
}

Tensor rms_norm(const Tensor& x, const Tensor* w, float eps) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  Tensor wf;
  if (w) {
    OVIS_ASSERT(w->numel() == D);
    wf = weight_f32(*w);
  }
  const float* wp = w ? wf.f32() : nullptr;
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  float* yp = y.f32();
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

Tensor layer_norm(const Tensor& x, const Tensor* w, const Tensor* b, float eps) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  Tensor wf, bf;
  if (w) wf = weight_f32(*w);
  if (b) bf = weight_f32(*b);
  const float* wp = w ? wf.f32() : nullptr;
  const float* bp = b ? bf.f32() : nullptr;
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for schedule(static) if (M * D > 16384)
  for (int64_t m = 0; m < M; ++m) {
    const float* r = xp + m * D;
    float* o = yp + m * D;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t d = 0; d < D; ++d) s += r[d];
    const double mean = s / double(D);
    double v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t d = 0; d < D; ++d) v += (r[d] - mean) * (r[d] - mean);
    const float inv = float(1.0 / std::sqrt(v / double(D) + eps));
    const float mf = float(mean);
    for (int64_t d = 0; d < D; ++d) {
      float t = (r[d] - mf) * inv;
      if (wp) t *= wp[d];
      if (bp) t += bp[d];
      o[d] = t;
    }
  }
  return y;
}

Tensor group_norm(const Tensor& x, int groups, const Tensor& w, const Tensor& b, float eps) {
  OVIS_ASSERT(x.ndim() == 3 && x.dim(0) % groups == 0);
  const int64_t C = x.dim(0), HW = x.dim(1) * x.dim(2), cpg = C / groups;
  Tensor wf = weight_f32(w), bf = weight_f32(b);
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for schedule(static)
  for (int64_t g = 0; g < groups; ++g) {
    const float* r = xp + g * cpg * HW;
    const int64_t n = cpg * HW;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; ++i) s += r[i];
    const double mean = s / double(n);
    double v = 0;
#pragma omp simd reduction(+ : v)
    for (int64_t i = 0; i < n; ++i) v += (r[i] - mean) * (r[i] - mean);
    const float inv = float(1.0 / std::sqrt(v / double(n) + eps));
    const float mf = float(mean);
    for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c) {
      const float a = inv * wf.f32()[c], bb = bf.f32()[c];
      const float* rc = xp + c * HW;
      float* oc = yp + c * HW;
      for (int64_t i = 0; i < HW; ++i) oc[i] = (rc[i] - mf) * a + bb;
    }
  }
  return y;
}

}  // namespace ovis::ops
