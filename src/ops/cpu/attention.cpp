// Scaled dot-product attention, tiled over queries. Each (head, query tile) task holds one
// [tile, Lk] score block, so memory is linear in the sequence length (no Lq x Lk matrix).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

namespace {
constexpr int64_t kQueryTile = 32;
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, int q_heads, int kv_heads,
                 float scale, bool causal) {
  OVIS_ASSERT(q_heads % kv_heads == 0);
  const int64_t Lq = q.dim(0), Lk = k.dim(0);
  const int64_t D = q.dim(-1) / q_heads;
  OVIS_ASSERT(k.dim(-1) == kv_heads * D && v.dim(-1) == kv_heads * D && v.dim(0) == Lk);
  const int64_t group = q_heads / kv_heads;
  const int64_t q_stride = int64_t(q_heads) * D, kv_stride = int64_t(kv_heads) * D;
  const int64_t causal_offset = Lk - Lq;
  Tensor out = Tensor::empty({Lq, q_stride});
  const float* qp = q.f32();
  const float* kp = k.f32();
  const float* vp = v.f32();
  float* op = out.f32();
  const int64_t tiles = (Lq + kQueryTile - 1) / kQueryTile;
  const int64_t tasks = tiles * q_heads;

#pragma omp parallel
  {
    std::vector<float> scores(static_cast<size_t>(kQueryTile * Lk), 0.0f);
    std::vector<float> acc(static_cast<size_t>(D), 0.0f);
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t h = task % q_heads, tile = task / q_heads;
      const int64_t kvh = h / group;
      const int64_t i0 = tile * kQueryTile, i1 = std::min(Lq, i0 + kQueryTile);
      for (int64_t i = i0; i < i1; ++i) {
        const float* qi = qp + i * q_stride + h * D;
        float* s = scores.data() + (i - i0) * Lk;
        const int64_t jend = causal ? std::min(Lk, i + causal_offset + 1) : Lk;
        float mx = -INFINITY;
        for (int64_t j = 0; j < jend; ++j) {
          const float* kj = kp + j * kv_stride + kvh * D;
          float dot = 0;
#pragma omp simd reduction(+ : dot)
          for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < jend; ++j) {
          s[j] = std::exp(s[j] - mx);
          sum += s[j];
        }
        const float inv = 1.0f / sum;
        std::fill(acc.begin(), acc.end(), 0.0f);
        float* a = acc.data();
        for (int64_t j = 0; j < jend; ++j) {
          const float p = s[j];
          const float* vj = vp + j * kv_stride + kvh * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) a[d] += p * vj[d];
        }
        float* o = op + i * q_stride + h * D;
        for (int64_t d = 0; d < D; ++d) o[d] = a[d] * inv;
      }
    }
  }
  return out;
}

}  // namespace ovis::ops
