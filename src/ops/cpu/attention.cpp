// Scaled dot-product attention (spec §9.5), three kernels. None holds an Lq x Lk matrix: each
// task owns one [tile, Lk] score block.
//  - few queries (decode): per kv head, every query of its group at once, fp32 dot products
//    over the strided K/V rows (bandwidth bound; fp32 in both precision modes).
//  - BF16 mode with AMX: attention_amx.cpp (bf16 Q/K/V/P, fp32 accumulation and softmax).
//  - otherwise: per (head, query tile) two oneDNN sgemm calls on the strided head views around
//    an fp32 softmax. In BF16 mode without AMX, Q/K/V and P are rounded to bf16 first, so both
//    BF16 kernels compute the same products.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "ops/cpu/attention_kernels.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/features.hpp"

namespace ovis::ops {

namespace {

using cpu::AttentionArgs;

constexpr int64_t kDecodeMaxQueries = 8;
constexpr int64_t kSgemmTile = 64;

inline float dot(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  float s = 0;
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  for (; i + 16 <= n; i += 16)
    acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  s = _mm512_reduce_add_ps(acc);
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void attention_few_queries(const AttentionArgs& a) {
  const int64_t d = a.d, ldq = a.ldq(), ldk = a.ldk();
  const int group = a.group();
  const int64_t rows = a.lq * group;
  const int64_t keys = a.key_end(a.lq - 1);
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(rows * std::max<int64_t>(keys, 1)));
    std::vector<float> o(static_cast<size_t>(rows * d));
    std::vector<float> sum(static_cast<size_t>(rows));
#pragma omp for schedule(dynamic, 1)
    for (int g = 0; g < a.kv_heads; ++g) {
      // Row r is query i = r / group of head g·group + r % group.
      auto q_row = [&](int64_t r) { return a.q + (r / group) * ldq + (g * group + r % group) * d; };
      for (int64_t j = 0; j < keys; ++j) {
        const float* kj = a.k + j * ldk + g * d;
        for (int64_t r = 0; r < rows; ++r)
          if (j < a.key_end(r / group)) s[r * keys + j] = dot(q_row(r), kj, d);
      }
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = s.data() + r * keys;
        const int64_t n = a.key_end(r / group);
        sum[r] = cpu::exp_row_f32(sr, n, n, a.scale, cpu::row_max_scaled(sr, n, a.scale), false);
      }
      std::fill(o.begin(), o.end(), 0.0f);
      for (int64_t j = 0; j < keys; ++j) {
        const float* vj = a.v + j * ldk + g * d;
        for (int64_t r = 0; r < rows; ++r)
          if (j < a.key_end(r / group)) axpy(s[r * keys + j], vj, o.data() + r * d, d);
      }
      for (int64_t r = 0; r < rows; ++r) {
        const float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        float* out = a.out + (r / group) * ldq + (g * group + r % group) * d;
        for (int64_t c = 0; c < d; ++c) out[c] = o[r * d + c] * inv;
      }
    }
  }
}

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float* c, int64_t ldc) {
  // Inside the parallel region oneDNN runs this single-threaded.
  if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc) != dnnl_success)
    fail("internal error: dnnl_sgemm failed for attention (", m, "x", n, "x", k, ")");
}

Tensor rounded_to_bf16(const float* p, int64_t n) {
  Tensor t = Tensor::empty({n});
  float* o = t.mutable_f32();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) o[i] = round_bf16(p[i]);
  return t;
}

void attention_sgemm(AttentionArgs a, bool bf16_inputs) {
  Tensor qr, kr, vr;
  if (bf16_inputs) {
    qr = rounded_to_bf16(a.q, a.lq * a.ldq());
    kr = rounded_to_bf16(a.k, a.lk * a.ldk());
    vr = rounded_to_bf16(a.v, a.lk * a.ldk());
    a.q = qr.f32();
    a.k = kr.f32();
    a.v = vr.f32();
  }
  const int64_t d = a.d, ldq = a.ldq(), ldk = a.ldk(), lk = a.lk;
  const int64_t tiles = (a.lq + kSgemmTile - 1) / kSgemmTile;
  const int64_t tasks = tiles * a.q_heads;
#pragma omp parallel
  {
    std::vector<float> s(static_cast<size_t>(kSgemmTile * lk));
    float sum[kSgemmTile];
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t h = task / tiles, i0 = (task % tiles) * kSgemmTile;
      const int64_t g = h / a.group(), rows = std::min(kSgemmTile, a.lq - i0);
      const int64_t keys = a.key_end(i0 + rows - 1);
      float* out = a.out + i0 * ldq + h * d;
      if (keys == 0) {
        for (int64_t r = 0; r < rows; ++r) std::fill(out + r * ldq, out + r * ldq + d, 0.0f);
        continue;
      }
      sgemm('N', 'T', rows, keys, d, a.q + i0 * ldq + h * d, ldq, a.k + g * d, ldk, s.data(), lk);
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = s.data() + r * lk;
        const int64_t n = a.key_end(i0 + r);
        sum[r] = cpu::exp_row_f32(sr, n, keys, a.scale, cpu::row_max_scaled(sr, n, a.scale),
                                  bf16_inputs);
      }
      sgemm('N', 'N', rows, d, keys, s.data(), lk, a.v + g * d, ldk, out, ldq);
      for (int64_t r = 0; r < rows; ++r) {
        const float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
        for (int64_t c = 0; c < d; ++c) out[r * ldq + c] *= inv;
      }
    }
  }
}

}  // namespace

Tensor cpu::CpuBackend::attention(const Context& c, const Tensor& q, const Tensor& k,
                                  const Tensor& v, int q_heads, int kv_heads, float scale,
                                  bool causal) {
  const int64_t Lq = q.dim(0), Lk = k.dim(0);
  const int64_t D = q.dim(-1) / q_heads;
  if (Lq == 0) return Tensor::empty({Lq, q_heads * D});
  if (Lk == 0 || D == 0) return Tensor::zeros({Lq, q_heads * D});
  Tensor out = Tensor::empty({Lq, q_heads * D});
  const AttentionArgs a{q.f32(),  k.f32(), v.f32(), out.mutable_f32(), Lq, Lk, D, q_heads,
                        kv_heads, scale,   causal};
  const bool bf16 = c.precision == Precision::BF16;
  if (Lq <= kDecodeMaxQueries)
    attention_few_queries(a);
  else if (bf16 && scale > 0 && cpu::amx_enabled())
    cpu::attention_amx(a);
  else
    attention_sgemm(a, bf16);
  return out;
}

}  // namespace ovis::ops
