// Scaled dot-product attention (spec §9.5), three kernels. None holds an Lq x Lk matrix: each
// task owns one [tile, Lk] score block.
//  - few queries (decode): split over spans of cached keys, every query head at once per span,
//    fp32 dot products over whole K/V rows (bandwidth bound; fp32 in both precision modes),
//    the spans' partial softmax states merged after (attention_few_queries).
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

inline void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

// Split-K decode ("flash-decoding"): the cached keys in spans, one work-pool task per span for
// every query head at once, so each task reads whole K/V rows (all kv heads, contiguous) as two
// sequential streams. Walking the cache head by head instead (one task per kv head: rows of
// 512 bytes kv_width apart) read it at ~21 GB/s against ~35 GB/s here (2 threads, 28 layers'
// caches of 544 tokens, bench_ops AttentionDecodeCold). Each span leaves per row its scaled
// max m, Σ e^(s·scale − m) and the unnormalised Σ p·v; the spans are merged after.
constexpr int64_t kMinSpan = 16, kMaxSpan = 256;

struct DecodeSpans {
  const AttentionArgs* a;
  int64_t rows, span;
  // Row r is query r / q_heads, head r % q_heads: it sees keys [0, end[r]), its q starts at
  // q + qoff[r] and its kv head's columns at col[r].
  const int64_t *end, *col, *qoff;
  float* part;  // [spans][rows][d + 2]: Σ p·v, then m and the sum
};

void decode_span(void* ctx, int64_t c) {
  const DecodeSpans& t = *static_cast<const DecodeSpans*>(ctx);
  const AttentionArgs& a = *t.a;
  const int64_t d = a.d, ldk = a.ldk(), rows = t.rows, span = t.span;
  const int64_t j0 = c * span, j1 = std::min(a.key_end(a.lq - 1), j0 + span);
  thread_local std::vector<float> s;
  s.resize(static_cast<size_t>(rows * span));
  float* part = t.part + c * rows * (d + 2);
  for (int64_t j = j0; j < j1; ++j)
    cpu::kernels::key_scores(a.q, t.qoff, a.k + j * ldk, t.col, t.end, j, rows, d,
                             s.data() + (j - j0), span);
  for (int64_t r = 0; r < rows; ++r) {
    float* o = part + r * (d + 2);
    std::fill(o, o + d, 0.0f);
    const int64_t n = std::clamp<int64_t>(t.end[r] - j0, 0, j1 - j0);
    float* sr = s.data() + r * span;
    const float mx = cpu::kernels::max_scaled(sr, n, a.scale);
    o[d] = mx;
    o[d + 1] = n > 0 ? cpu::exp_row_f32(sr, n, n, a.scale, mx, false) : 0.0f;
  }
  for (int64_t j = j0; j < j1; ++j)
    cpu::kernels::value_accumulate(a.v + j * ldk, t.col, t.end, j, rows, d, s.data() + (j - j0),
                                   span, part, d + 2);
}

void attention_few_queries(const AttentionArgs& a) {
  const int64_t d = a.d, ldq = a.ldq();
  const int64_t rows = a.lq * a.q_heads;
  const int64_t keys = a.key_end(a.lq - 1);
  const int64_t threads = omp_get_max_threads();
  const int64_t span =
      std::clamp<int64_t>((keys + 4 * threads - 1) / (4 * threads), kMinSpan, kMaxSpan);
  const int64_t spans = std::max<int64_t>(1, (keys + span - 1) / span);
  thread_local std::vector<float> part;
  thread_local std::vector<int64_t> end, col, qoff;
  part.resize(static_cast<size_t>(spans * rows * (d + 2)));
  end.resize(static_cast<size_t>(rows));
  col.resize(static_cast<size_t>(rows));
  qoff.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    end[r] = a.key_end(r / a.q_heads);
    col[r] = (r % a.q_heads) / a.group() * d;
    qoff[r] = (r / a.q_heads) * ldq + (r % a.q_heads) * d;
  }
  DecodeSpans task{&a, rows, span, end.data(), col.data(), qoff.data(), part.data()};
  if (keys > 0) cpu::kernels::parallel_chunks(0, spans, decode_span, &task);
  for (int64_t r = 0; r < rows; ++r) {
    float* out = a.out + qoff[r];
    std::fill(out, out + d, 0.0f);
    if (keys == 0) continue;
    float mx = -INFINITY;
    for (int64_t c = 0; c < spans; ++c) mx = std::max(mx, part[(c * rows + r) * (d + 2) + d]);
    if (mx == -INFINITY) continue;  // no key visible
    float sum = 0;
    for (int64_t c = 0; c < spans; ++c) {
      const float* p = part.data() + (c * rows + r) * (d + 2);
      if (p[d + 1] == 0.0f) continue;
      const float w = std::exp(p[d] - mx);
      sum += w * p[d + 1];
      axpy(w, p, out, d);
    }
    const float inv = sum > 0 ? 1.0f / sum : 0.0f;
    for (int64_t x = 0; x < d; ++x) out[x] *= inv;
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
  constexpr int64_t kChunk = 1 << 16;
#pragma omp parallel for schedule(static) if (n > kChunk)
  for (int64_t i = 0; i < n; i += kChunk)
    cpu::kernels::round_bf16(p + i, std::min(kChunk, n - i), o + i);
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
        sum[r] = cpu::exp_row_f32(sr, n, keys, a.scale, cpu::kernels::max_scaled(sr, n, a.scale),
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
