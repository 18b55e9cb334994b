// Normalisations with the CPU backend's arithmetic: sums in double, the normalisation factor
// formed as there, fp32 elementwise math, one rounding on store.
#include <algorithm>

#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

constexpr int kRowsPerBlock = kThreads / 32;  // one warp per row

// RMSNorm: x / sqrt(float(Σx²/D) + eps) (· w), one warp per row.
__global__ void rms_norm_kernel(Elems x, Elems w, MutElems y, int64_t M, int64_t D, float eps) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= M) return;
  const int64_t base = row * D;
  double ss = 0;
  for (int64_t d = lane; d < D; d += 32) {
    const double v = load(x, base + d);
    ss += v * v;
  }
  ss = warp_sum(ss);
  const float inv = 1.0f / sqrtf(float(ss / double(D)) + eps);
  for (int64_t d = lane; d < D; d += 32) {
    float v = load(x, base + d) * inv;
    if (w.p) v *= load(w, d);
    store(y, base + d, v);
  }
}

// LayerNorm: two passes in double for (mean, variance), one warp per row.
__global__ void layer_norm_kernel(Elems x, Elems w, Elems b, MutElems y, int64_t M, int64_t D,
                                  float eps) {
  const int64_t row = int64_t(blockIdx.x) * kRowsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (row >= M) return;
  const int64_t base = row * D;
  double s = 0;
  for (int64_t d = lane; d < D; d += 32) s += load(x, base + d);
  const double mean = warp_sum(s) / double(D);
  double v = 0;
  for (int64_t d = lane; d < D; d += 32) {
    const double t = load(x, base + d) - mean;
    v += t * t;
  }
  v = warp_sum(v);
  const float inv = float(1.0 / sqrt(v / double(D) + eps));
  const float mf = float(mean);
  for (int64_t d = lane; d < D; d += 32) {
    float t = (load(x, base + d) - mf) * inv;
    if (w.p) t *= load(w, d);
    if (b.p) t += load(b, d);
    store(y, base + d, t);
  }
}

// Group statistics in three launches: per-slice sums, per-slice squared deviations from the
// group mean (each block rebuilds the mean from the first pass), then (mean, 1/sqrt(var + eps)).
// Group g of x [C, H, W] is the contiguous span [g·n, (g+1)·n).
__global__ void group_sum_kernel(Elems x, int64_t n, int slices, double* partial) {
  __shared__ double scratch[32];
  const int g = blockIdx.x, s = blockIdx.y;
  const int64_t per = (n + slices - 1) / slices, b0 = s * per, b1 = min(n, b0 + per);
  double acc = 0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x) acc += load(x, int64_t(g) * n + i);
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[g * slices + s] = acc;
}

__global__ void group_var_kernel(Elems x, int64_t n, int slices, const double* sums,
                                 double* partial) {
  __shared__ double scratch[32];
  const int g = blockIdx.x, s = blockIdx.y;
  double total = 0;
  for (int k = 0; k < slices; ++k) total += sums[g * slices + k];
  const double mean = total / double(n);
  const int64_t per = (n + slices - 1) / slices, b0 = s * per, b1 = min(n, b0 + per);
  double acc = 0;
  for (int64_t i = b0 + threadIdx.x; i < b1; i += blockDim.x) {
    const double t = load(x, int64_t(g) * n + i) - mean;
    acc += t * t;
  }
  acc = block_sum(acc, scratch);
  if (threadIdx.x == 0) partial[g * slices + s] = acc;
}

__global__ void group_stats_kernel(int groups, int64_t n, int slices, const double* sums,
                                   const double* sqs, float eps, float* st) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= groups) return;
  double s = 0, v = 0;
  for (int k = 0; k < slices; ++k) {
    s += sums[g * slices + k];
    v += sqs[g * slices + k];
  }
  st[2 * g] = float(s / double(n));
  st[2 * g + 1] = float(1.0 / sqrt(v / double(n) + eps));
}

// y = (x - mean) · (inv_std · w[c]) + b[c]
__global__ void group_norm_apply_kernel(Elems x, const float* st, Elems w, Elems b, MutElems y,
                                        int64_t n, int64_t HW, int64_t cpg) {
  OVIS_GRID_STRIDE(i, n) {
    const int64_t ch = i / HW, g = ch / cpg;
    const float a = st[2 * g + 1] * load(w, ch);
    store(y, i, (load(x, i) - st[2 * g]) * a + load(b, ch));
  }
}

__global__ void group_moments_kernel(Elems x, int64_t H, int64_t W, int64_t cpg, int64_t y0,
                                     int64_t y1, int64_t x0, int64_t x1, double* acc) {
  __shared__ double scratch[32];
  const int g = blockIdx.x;
  const int64_t h = y1 - y0, w = x1 - x0, n = cpg * h * w;
  double sum = 0, sq = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t ch = g * cpg + i / (h * w), r = y0 + (i / w) % h, col = x0 + i % w;
    const double v = load(x, (ch * H + r) * W + col);
    sum += v;
    sq += v * v;
  }
  sum = block_sum(sum, scratch);
  sq = block_sum(sq, scratch);
  if (threadIdx.x == 0) {
    acc[3 * g] += sum;
    acc[3 * g + 1] += sq;
    acc[3 * g + 2] += double(n);
  }
}

__global__ void stats_from_moments_kernel(const double* acc, int groups, float eps, float* st) {
  const int g = blockIdx.x * blockDim.x + threadIdx.x;
  if (g >= groups) return;
  const double cnt = acc[3 * g + 2];
  const double m = cnt > 0 ? acc[3 * g] / cnt : 0.0;
  const double var = cnt > 0 ? fmax(0.0, acc[3 * g + 1] / cnt - m * m) : 0.0;
  st[2 * g] = float(m);
  st[2 * g + 1] = float(1.0 / sqrt(var + eps));
}

Elems maybe(const Tensor* t) {
  return t ? elems(*t) : Elems{nullptr, DType::F32};
}

}  // namespace

Tensor CudaBackend::rms_norm(const Context& c, const Tensor& x, const Tensor* w, float eps) {
  Tensor y = empty(x.shape(), c.act_dtype());
  const int64_t D = x.dim(-1), M = D ? x.numel() / D : 0;
  if (M == 0) return y;
  rms_norm_kernel<<<unsigned((M + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream()>>>(
      elems(x), maybe(w), mut_elems(y), M, D, eps);
  OVIS_CU_LAUNCHED("rms_norm");
  return y;
}

Tensor CudaBackend::layer_norm(const Context& c, const Tensor& x, const Tensor* w, const Tensor* b,
                               float eps) {
  Tensor y = empty(x.shape(), c.act_dtype());
  const int64_t D = x.dim(-1), M = D ? x.numel() / D : 0;
  if (M == 0) return y;
  layer_norm_kernel<<<unsigned((M + kRowsPerBlock - 1) / kRowsPerBlock), kThreads, 0, stream()>>>(
      elems(x), maybe(w), maybe(b), mut_elems(y), M, D, eps);
  OVIS_CU_LAUNCHED("layer_norm");
  return y;
}

Tensor CudaBackend::group_norm_stats(const Context&, const Tensor& x, int groups, float eps) {
  const int64_t n = x.numel() / groups;
  Tensor st = empty({groups, 2}, DType::F32);
  const int slices = int(std::clamp<int64_t>(n / (kThreads * 16), 1, 64));
  Tensor sums = empty({int64_t(groups) * slices}, DType::F64);
  Tensor sqs = empty({int64_t(groups) * slices}, DType::F64);
  const dim3 grid{unsigned(groups), unsigned(slices)};
  double* sp = static_cast<double*>(sums.device_ptr());
  double* qp = static_cast<double*>(sqs.device_ptr());
  group_sum_kernel<<<grid, kThreads, 0, stream()>>>(elems(x), n, slices, sp);
  OVIS_CU_LAUNCHED("group_norm_stats (sums)");
  group_var_kernel<<<grid, kThreads, 0, stream()>>>(elems(x), n, slices, sp, qp);
  OVIS_CU_LAUNCHED("group_norm_stats (variance)");
  group_stats_kernel<<<unsigned((groups + 127) / 128), 128, 0, stream()>>>(
      groups, n, slices, sp, qp, eps, static_cast<float*>(st.device_ptr()));
  OVIS_CU_LAUNCHED("group_norm_stats");
  return st;
}

Tensor CudaBackend::group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w,
                               const Tensor& b, float eps) {
  const Tensor st = group_norm_stats(c, x, groups, eps);
  Tensor y = empty(x.shape(), c.act_dtype());
  const int64_t n = x.numel(), HW = x.dim(1) * x.dim(2), cpg = x.dim(0) / groups;
  if (n == 0) return y;
  group_norm_apply_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(
      elems(x), static_cast<const float*>(st.device_ptr()), elems(w), elems(b), mut_elems(y), n, HW,
      cpg);
  OVIS_CU_LAUNCHED("group_norm");
  return y;
}

void CudaBackend::group_moments_add_(const Context&, Tensor& acc, const Tensor& x, int groups,
                                     int64_t y0, int64_t y1, int64_t x0, int64_t x1) {
  group_moments_kernel<<<unsigned(groups), kThreads, 0, stream()>>>(
      elems(x), x.dim(1), x.dim(2), x.dim(0) / groups, y0, y1, x0, x1,
      static_cast<double*>(acc.device_ptr()));
  OVIS_CU_LAUNCHED("group_moments_add_");
}

Tensor CudaBackend::group_norm_stats_from_moments(const Context&, const Tensor& acc, float eps) {
  const int groups = int(acc.numel() / 3);
  Tensor st = empty({groups, 2}, DType::F32);
  stats_from_moments_kernel<<<unsigned((groups + 127) / 128), 128, 0, stream()>>>(
      static_cast<const double*>(acc.device_ptr()), groups, eps,
      static_cast<float*>(st.device_ptr()));
  OVIS_CU_LAUNCHED("group_norm_stats_from_moments");
  return st;
}

}  // namespace ovis::ops::cuda
