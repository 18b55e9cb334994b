// Scaled dot-product attention (spec §9.5), three kernels. None holds an Lq x Lk matrix: each
// task owns one [tile, Lk] score block.
//  - few queries (decode): per kv head, every query of its group at once, fp32 dot products
//    over the strided K/V rows (bandwidth bound; fp32 in both precision modes), one work-pool
//    task per kv head.
//  - BF16 mode with AMX: attention_amx.cpp (bf16 Q/K/V/P, fp32 accumulation and softmax).
//  - otherwise: per (head, query tile) two GEMMs on the strided head views around an fp32
//    softmax: oneDNN sgemm in F32 mode; in BF16 mode Q/K/V and P are rounded to bf16 and the
//    products run on the bf16 GEMM kernels (AVX512-BF16) or sgemm (below it), so every BF16
//    kernel computes the same products (attention_tiled).
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
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/cpu/kernels/work_pool.hpp"

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

// The n floats at p into L1. The cached K/V rows of one head are 4 KiB apart (all kv heads in a
// row), where the hardware prefetchers stop; fetching 16 keys ahead cut the decode attention's
// time by a third at 512 cached tokens (single-thread micro-benchmark, 28 layers' caches).
constexpr int64_t kPrefetchKeys = 16;
inline void prefetch_floats(const float* p, int64_t n) {
  for (int64_t i = 0; i < n; i += 16)
    _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

inline void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// One task per kv head (its group of query heads), on the work pool: a decode step runs one
// of these per layer, and the pool does not stall on a descheduled thread (work_pool.hpp).
void attention_few_queries(const AttentionArgs& a) {
  const int64_t d = a.d, ldq = a.ldq(), ldk = a.ldk();
  const int group = a.group();
  const int64_t rows = a.lq * group;
  const int64_t keys = a.key_end(a.lq - 1);
  cpu::kernels::parallel_chunks(0, a.kv_heads, [&](int64_t g) {
    thread_local std::vector<float> s, o, sum;
    s.resize(static_cast<size_t>(rows * std::max<int64_t>(keys, 1)));
    o.assign(static_cast<size_t>(rows * d), 0.0f);
    sum.resize(static_cast<size_t>(rows));
    // Row r is query i = r / group of head g·group + r % group.
    auto q_row = [&](int64_t r) { return a.q + (r / group) * ldq + (g * group + r % group) * d; };
    for (int64_t j = 0; j < keys; ++j) {
      const float* kj = a.k + j * ldk + g * d;
      if (j + kPrefetchKeys < keys) prefetch_floats(kj + kPrefetchKeys * ldk, d);
      for (int64_t r = 0; r < rows; ++r)
        if (j < a.key_end(r / group)) s[r * keys + j] = dot(q_row(r), kj, d);
    }
    for (int64_t r = 0; r < rows; ++r) {
      float* sr = s.data() + r * keys;
      const int64_t n = a.key_end(r / group);
      sum[r] = cpu::exp_row_f32(sr, n, n, a.scale, cpu::row_max_scaled(sr, n, a.scale), false);
    }
    for (int64_t j = 0; j < keys; ++j) {
      const float* vj = a.v + j * ldk + g * d;
      if (j + kPrefetchKeys < keys) prefetch_floats(vj + kPrefetchKeys * ldk, d);
      for (int64_t r = 0; r < rows; ++r)
        if (j < a.key_end(r / group)) axpy(s[r * keys + j], vj, o.data() + r * d, d);
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float inv = sum[r] > 0 ? 1.0f / sum[r] : 0.0f;
      float* out = a.out + (r / group) * ldq + (g * group + r % group) * d;
      for (int64_t c = 0; c < d; ++c) out[c] = o[r * d + c] * inv;
    }
  });
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

Tensor converted_to_bf16(const float* p, int64_t n) {
  Tensor t = Tensor::empty({n}, DType::BF16);
  cpu::kernels::convert_f32_to_bf16(n, p, t.mutable_data<uint16_t>(), 0);
  return t;
}

// Per (head, query tile): S = Q·Kᵀ, an fp32 softmax, O = P·V. Three ways to form the products:
// f32 sgemm (F32 precision); in BF16 precision with the AVX512-BF16 kernels, the bf16 GEMM of
// kernels/ on bf16 K/V (Q and P rounded to bf16 while packed), single-threaded per task; below
// that ISA, sgemm on bf16-rounded f32 copies. Both BF16 ways compute the same exact products
// with fp32 accumulation (only the summation order differs), as the AMX kernel does.
void attention_tiled(AttentionArgs a, bool bf16_inputs) {
  const bool bf16_kernels =
      bf16_inputs && cpu::kernels::active_isa() >= cpu::kernels::Isa::Avx512Bf16;
  Tensor qr, kr, vr;
  const uint16_t *kb = nullptr, *vb = nullptr;
  if (bf16_kernels) {
    kr = converted_to_bf16(a.k, a.lk * a.ldk());
    vr = converted_to_bf16(a.v, a.lk * a.ldk());
    kb = kr.data<uint16_t>();
    vb = vr.data<uint16_t>();
  } else if (bf16_inputs) {
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
  using cpu::kernels::WeightLayout;
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
      const float* qt = a.q + i0 * ldq + h * d;
      if (bf16_kernels)
        cpu::kernels::gemm_bf16(rows, keys, d, qt, ldq, kb + g * d, ldk, WeightLayout::NK, nullptr,
                                s.data(), lk, 1);
      else
        sgemm('N', 'T', rows, keys, d, qt, ldq, a.k + g * d, ldk, s.data(), lk);
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = s.data() + r * lk;
        const int64_t n = a.key_end(i0 + r);
        sum[r] = cpu::exp_row_f32(sr, n, keys, a.scale, cpu::row_max_scaled(sr, n, a.scale),
                                  bf16_inputs);
      }
      if (bf16_kernels)
        cpu::kernels::gemm_bf16(rows, d, keys, s.data(), lk, vb + g * d, ldk, WeightLayout::KN,
                                nullptr, out, ldq, 1);
      else
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
    attention_tiled(a, bf16);
  return out;
}

}  // namespace ovis::ops
