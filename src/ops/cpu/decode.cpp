// The ops of a decode step whose inputs live in tensors (position, token ids): on the CPU they
// read those tensors directly and reuse the other ops.
#include <cmath>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/torch_randn.hpp"

namespace ovis::ops::cpu {

namespace {

// The position an F32 [1] tensor holds (an exact non-negative integer).
int64_t position_of(const Tensor& pos) {
  const float p = pos.f32()[0];
  if (!(p >= 0.0f) || p != std::floor(p) || p > 16777216.0f)
    fail("internal error: token position ", p, " is not a non-negative integer");
  return int64_t(p);
}

}  // namespace

Tensor CpuBackend::embedding(const Context& c, const Tensor& table, const Tensor& ids) {
  const int32_t* ip = ids.data<int32_t>();
  std::vector<int64_t> rows(size_t(ids.numel()));
  std::vector<bool> outside(rows.size(), false);
  for (size_t i = 0; i < rows.size(); ++i) {
    outside[i] = ip[i] < 0 || ip[i] >= table.dim(0);
    rows[i] = outside[i] ? 0 : ip[i];
  }
  Tensor y = embedding(c, table, rows);
  float* yp = y.mutable_f32();
  for (size_t i = 0; i < rows.size(); ++i)
    if (outside[i]) std::fill_n(yp + int64_t(i) * table.dim(1), table.dim(1), 0.0f);
  return y;
}

Tensor CpuBackend::argmax(const Context&, const Tensor& x) {
  const Tensor f = x.dtype() == DType::F32 ? x : x.to_f32();
  const int64_t N = x.dim(-1), M = x.numel() / N;
  Tensor out = Tensor::empty({M}, DType::I32);
  int32_t* o = out.mutable_data<int32_t>();
  for (int64_t m = 0; m < M; ++m) {
    // The rule of TokenSampler::argmax: the first maximum, NaN only if everything is NaN.
    const float* r = f.f32() + m * N;
    int64_t best = 0;
    for (int64_t i = 1; i < N; ++i)
      if (r[i] > r[best] || (std::isnan(r[best]) && !std::isnan(r[i]))) best = i;
    o[m] = int32_t(best);
  }
  return out;
}

RopeTable CpuBackend::rope_table_at(const Context& c, const Tensor& pos, int64_t L,
                                    const RopeFreqs& f) {
  return rope_table(c, position_of(pos), L, f);
}

void CpuBackend::copy_rows_at_(const Context& c, Tensor& dst, const Tensor& src,
                               const Tensor& pos) {
  const int64_t row = dst.numel() / dst.dim(0), n = src.numel() / row, p = position_of(pos);
  if (p + n > dst.dim(0))
    fail("internal error: rows [", p, ", ", p + n, ") outside a tensor of ", dst.dim(0), " rows");
  Tensor rows = dst.slice_rows(p, p + n);
  copy_(c, rows, src);
}

Tensor CpuBackend::attention_at(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                                const Tensor& pos, int q_heads, int kv_heads, float scale) {
  const int64_t end = position_of(pos) + q.dim(0);
  if (end > k.dim(0)) fail("internal error: attention over ", end, " cached rows of ", k.dim(0));
  return attention(c, q, k.slice_rows(0, end), v.slice_rows(0, end), q_heads, kv_heads, scale,
                   /*causal=*/true);
}

Tensor CpuBackend::randn_torch_cuda(const Context&, const Shape& shape, uint64_t seed) {
  Tensor out = Tensor::empty(shape);
  const int64_t n = out.numel();
  if (n == 0) return out;
  float* o = out.mutable_f32();
  torch_randn_host(o, n, seed, 0, torch_randn_threads(n, kTorchRandnSms, kTorchRandnThreadsPerSm));
  for (int64_t i = 0; i < n; ++i) o[i] = round_bf16(o[i]);
  return out;
}

}  // namespace ovis::ops::cpu
