// GEMM for the CPU backend: oneDNN matmul (brgemm/AMX kernels) for M > kGemvMaxRows, a
// bandwidth-bound hand-written GEMV for decode-sized M that streams each weight row once.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/dnnl_util.hpp"
#include "ops/cpu/quant/quant_ops.hpp"
#include "ops/cpu/vec_math.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

namespace cpu {

dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream s(dnnl_engine());
  return s;
}

}  // namespace cpu

namespace {

using cpu::dnnl_engine;
using cpu::dnnl_stream;
using dnnl::memory;

constexpr int64_t kGemvMaxRows = 4;

memory::data_type dnnl_dt(DType t) {
  switch (t) {
    case DType::F32:
      return memory::data_type::f32;
    case DType::BF16:
      return memory::data_type::bf16;
    case DType::F16:
      return memory::data_type::f16;
    default:
      fail("internal error: GEMM on unsupported dtype ", dtype_name(t));
  }
}

struct GemmKey {
  int64_t m, n, k;
  DType a, b;
  bool b_transposed, bias;
  bool operator<(const GemmKey& o) const {
    return std::tie(m, n, k, a, b, b_transposed, bias) <
           std::tie(o.m, o.n, o.k, o.a, o.b, o.b_transposed, o.bias);
  }
};

}  // namespace

// oneDNN matmul primitives by problem shape, owned by the backend. Bounded: the least recently
// used plan is dropped beyond kMaxPlans (M varies with the prompt and image sizes).
struct cpu::GemmPlans {
  static constexpr size_t kMaxPlans = 64;
  std::mutex mu;
  std::map<GemmKey, std::pair<dnnl::matmul, uint64_t>> plans;
  uint64_t clock = 0;

  dnnl::matmul get(const GemmKey& key) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = plans.find(key);
    if (it != plans.end()) {
      it->second.second = ++clock;
      return it->second.first;
    }
    if (plans.size() >= kMaxPlans) {
      auto oldest = plans.begin();
      for (auto j = plans.begin(); j != plans.end(); ++j)
        if (j->second.second < oldest->second.second) oldest = j;
      plans.erase(oldest);
    }
    memory::desc a_md({key.m, key.k}, dnnl_dt(key.a), memory::format_tag::ab);
    memory::desc b_md({key.k, key.n}, dnnl_dt(key.b),
                      key.b_transposed ? memory::format_tag::ba : memory::format_tag::ab);
    memory::desc c_md({key.m, key.n}, memory::data_type::f32, memory::format_tag::ab);
    dnnl::matmul::primitive_desc pd;
    if (key.bias) {
      memory::desc bias_md({1, key.n}, memory::data_type::f32, memory::format_tag::ab);
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, c_md),
                                        dnnl_engine());
    } else {
      pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), dnnl_engine());
    }
    return plans.emplace(key, std::make_pair(dnnl::matmul(pd), ++clock)).first->second.first;
  }
};

namespace {

// a [M,K] f32 or bf16, b is [N,K] (transposed) or [K,N], c [M,N] f32.
void dnnl_gemm(cpu::GemmPlans& plans, const void* a, DType adt, const void* b, DType bdt,
               bool b_transposed, const float* bias, float* c, int64_t m, int64_t n, int64_t k) {
  GemmKey key{m, n, k, adt, bdt, b_transposed, bias != nullptr};
  dnnl::matmul prim = plans.get(key);
  memory a_mem({{m, k}, dnnl_dt(adt), memory::format_tag::ab}, dnnl_engine(), const_cast<void*>(a));
  memory b_mem(
      {{k, n}, dnnl_dt(bdt), b_transposed ? memory::format_tag::ba : memory::format_tag::ab},
      dnnl_engine(), const_cast<void*>(b));
  memory c_mem({{m, n}, memory::data_type::f32, memory::format_tag::ab}, dnnl_engine(), c);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
  if (bias)
    args.emplace(DNNL_ARG_BIAS, memory({{1, n}, memory::data_type::f32, memory::format_tag::ab},
                                       dnnl_engine(), const_cast<float*>(bias)));
  prim.execute(dnnl_stream(), args);
  dnnl_stream().wait();
}

Tensor to_bf16(const Tensor& x) {
  Tensor r = Tensor::empty(x.shape(), DType::BF16);
  const float* s = x.f32();
  uint16_t* o = r.mutable_data<uint16_t>();
  int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(s[i]);
  return r;
}

// ---- 16-bit weights widened to f32 ----

// n bf16 (or f16) values to f32.
void widen(const uint16_t* src, bool f16, int64_t n, float* dst) {
  int64_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256((const __m256i*)(src + i));
    _mm512_storeu_ps(dst + i,
                     f16 ? _mm512_cvtph_ps(h)
                         : _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
  }
#endif
  for (; i < n; ++i) dst[i] = f16 ? f16_to_f32(src[i]) : bf16_to_f32(src[i]);
}

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
    fail("internal error: dnnl_sgemm failed (", m, "x", n, "x", k, ")");
}

// y[M, N] = x[M, K] · W (+ bias) in f32 for a 16-bit weight W, given as w[N, K] (linear,
// nk = true) or b[K, N] (matmul). Each task widens one [<=256 x <=1024] weight block into a
// per-thread scratch (1 MiB) and runs a single-threaded sgemm on it, so the weight is read once
// and never upcast as a whole.
void gemm_f32_w16(const float* x, const uint16_t* w, bool f16, bool nk, const float* bias, float* y,
                  int64_t M, int64_t N, int64_t K) {
  constexpr int64_t kNb = 256, kKb = 1024;
  const int64_t nblocks = (N + kNb - 1) / kNb;
#pragma omp parallel
  {
    std::vector<float> scratch(static_cast<size_t>(kNb * kKb));
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t n0 = blk * kNb, nn = std::min(kNb, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kKb) {
        const int64_t kk = std::min(kKb, K - k0);
        const float beta = k0 == 0 ? 0.0f : 1.0f;
        if (nk) {
          for (int64_t i = 0; i < nn; ++i)
            widen(w + (n0 + i) * K + k0, f16, kk, scratch.data() + i * kk);
          sgemm('N', 'T', M, nn, kk, x + k0, K, scratch.data(), kk, beta, y + n0, N);
        } else {
          for (int64_t i = 0; i < kk; ++i)
            widen(w + (k0 + i) * N + n0, f16, nn, scratch.data() + i * nn);
          sgemm('N', 'N', M, nn, kk, x + k0, K, scratch.data(), nn, beta, y + n0, N);
        }
      }
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = n0; n < n0 + nn; ++n) y[m * N + n] += bias[n];
    }
  }
}

// ---- GEMV: y[m, n] = Σ_k x[m, k] w[n, k] (+ bias[n]) for M <= kGemvMaxRows ----
// Bandwidth bound: each weight row is streamed once. One parallel region, a static contiguous
// split of the rows per thread (no scheduling, one join), R = 4 rows per step so four weight
// streams are in flight with M·R independent accumulators.

struct GemvArgs {
  const void* x;  // [M, K]: bf16 in the bf16-weights BF16-mode kernel, else f32
  const uint16_t* w;
  bool f16;
  const float* bias;
  float* y;
  int64_t M, N, K;
};

#if defined(__AVX512F__)
// Rows are 4 KiB pages apart at K = 2048, where the hardware streamers stop; fetching the same
// columns two row-steps (8 rows) ahead into L2 keeps DRAM busy (~+30% GB/s measured).
constexpr int64_t kPrefetchRows = 8;
inline void prefetch_ahead(const GemvArgs& g, int64_t row, int64_t k) {
  if (row + kPrefetchRows < g.N)
    _mm_prefetch((const char*)(g.w + (row + kPrefetchRows) * g.K + k), _MM_HINT_T1);
}

// 32 weights of a 16-bit row as two f32 vectors.
inline void widen32(const uint16_t* p, bool f16, __mmask32 mask, __m512& lo, __m512& hi) {
  const __m512i v = _mm512_maskz_loadu_epi16(mask, p);
  const __m256i a = _mm512_castsi512_si256(v), b = _mm512_extracti64x4_epi64(v, 1);
  if (f16) {
    lo = _mm512_cvtph_ps(a);
    hi = _mm512_cvtph_ps(b);
  } else {
    lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(a), 16));
    hi = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
  }
}

// f32 activations, 16-bit weights widened to f32 (F32 precision).
template <int M, int R>
inline void gemv_f32_step(const GemvArgs& g, int64_t n) {
  const float* x = static_cast<const float*>(g.x);
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < g.K; k += 32) {
    const int64_t left = g.K - k;
    const __mmask32 mask = left >= 32 ? __mmask32(~0u) : __mmask32((1u << left) - 1);
    __m512 xl[M], xh[M];
    for (int m = 0; m < M; ++m) {
      xl[m] = _mm512_maskz_loadu_ps(__mmask16(mask), x + m * g.K + k);
      xh[m] = _mm512_maskz_loadu_ps(__mmask16(mask >> 16), x + m * g.K + k + 16);
    }
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(g, n + r, k);
      __m512 lo, hi;
      widen32(g.w + (n + r) * g.K + k, g.f16, mask, lo, hi);
      for (int m = 0; m < M; ++m)
        acc[r][m] = _mm512_fmadd_ps(xh[m], hi, _mm512_fmadd_ps(xl[m], lo, acc[r][m]));
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      g.y[m * g.N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + (g.bias ? g.bias[n + r] : 0.0f);
}
#endif

#if defined(__AVX512BF16__)
// bf16 weights, bf16-rounded activations, fp32 accumulation (BF16 precision).
template <int M, int R>
inline void gemv_bf16_step(const GemvArgs& g, int64_t n) {
  const uint16_t* x = static_cast<const uint16_t*>(g.x);
  __m512 acc[R][M];
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m) acc[r][m] = _mm512_setzero_ps();
  for (int64_t k = 0; k < g.K; k += 32) {
    const int64_t left = g.K - k;
    const __mmask32 mask = left >= 32 ? __mmask32(~0u) : __mmask32((1u << left) - 1);
    __m512bh xv[M];
    for (int m = 0; m < M; ++m) xv[m] = (__m512bh)_mm512_maskz_loadu_epi16(mask, x + m * g.K + k);
    for (int r = 0; r < R; ++r) {
      prefetch_ahead(g, n + r, k);
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, g.w + (n + r) * g.K + k);
      for (int m = 0; m < M; ++m) acc[r][m] = _mm512_dpbf16_ps(acc[r][m], xv[m], wv);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int m = 0; m < M; ++m)
      g.y[m * g.N + n + r] = _mm512_reduce_add_ps(acc[r][m]) + (g.bias ? g.bias[n + r] : 0.0f);
}
#endif

// Portable fallback: f32 activations, 16-bit weights.
void gemv_scalar_row(const GemvArgs& g, int64_t n) {
  const float* x = static_cast<const float*>(g.x);
  const uint16_t* wr = g.w + n * g.K;
  for (int64_t m = 0; m < g.M; ++m) {
    float s = 0;
    for (int64_t k = 0; k < g.K; ++k)
      s += x[m * g.K + k] * (g.f16 ? f16_to_f32(wr[k]) : bf16_to_f32(wr[k]));
    g.y[m * g.N + n] = s + (g.bias ? g.bias[n] : 0.0f);
  }
}

template <bool kBf16, int M>
void gemv_range(const GemvArgs& g, int64_t n0, int64_t n1) {
  int64_t n = n0;
#if defined(__AVX512BF16__)
  if constexpr (kBf16) {
    for (; n + 4 <= n1; n += 4) gemv_bf16_step<M, 4>(g, n);
    for (; n < n1; ++n) gemv_bf16_step<M, 1>(g, n);
    return;
  }
#endif
#if defined(__AVX512F__)
  if constexpr (!kBf16) {
    for (; n + 4 <= n1; n += 4) gemv_f32_step<M, 4>(g, n);
    for (; n < n1; ++n) gemv_f32_step<M, 1>(g, n);
    return;
  }
#endif
  for (; n < n1; ++n) gemv_scalar_row(g, n);
}

template <bool kBf16>
void gemv_range_m(const GemvArgs& g, int64_t n0, int64_t n1) {
  switch (g.M) {
    case 1:
      return gemv_range<kBf16, 1>(g, n0, n1);
    case 2:
      return gemv_range<kBf16, 2>(g, n0, n1);
    case 3:
      return gemv_range<kBf16, 3>(g, n0, n1);
    default:
      return gemv_range<kBf16, 4>(g, n0, n1);
  }
}

// kBf16: x is bf16 and w is bf16 (BF16 mode); else x is f32 and w bf16/f16.
template <bool kBf16>
void gemv(const GemvArgs& g) {
  OVIS_ASSERT(g.M >= 1 && g.M <= kGemvMaxRows);
  // Below ~256 KiB of weights a second thread costs more than it streams.
  const bool parallel = int64_t(g.N) * g.K >= (int64_t(1) << 17);
#pragma omp parallel if (parallel)
  {
    const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ((g.N + T - 1) / T + 15) / 16 * 16;
    const int64_t n0 = std::min(g.N, t * chunk), n1 = std::min(g.N, n0 + chunk);
    gemv_range_m<kBf16>(g, n0, n1);
  }
}

}  // namespace

Tensor cpu::CpuBackend::linear(const Context& c, const Tensor& x, const LinearWeights& lw) {
  const Tensor& w = lw.w;
  const int64_t K = w.dim(1), N = w.dim(0);
  const int64_t M = x.numel() / K;
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  const float* bptr = lw.b.defined() ? lw.b.f32() : nullptr;
  const bool bf16_mode = c.precision == Precision::BF16;
  float* yp = y.mutable_f32();

  if (dtype_is_quantized(w.dtype())) {  // both precisions: block-quantized activations
    quant::linear(w.dtype(), w.raw(), N, K, x.f32(), M, bptr, yp);
    return y;
  }
  if (M <= kGemvMaxRows && w.dtype() != DType::F32) {
    const bool f16 = w.dtype() == DType::F16;
    if (bf16_mode && !f16) {
      Tensor xb = to_bf16(x);
#if defined(__AVX512BF16__)
      gemv<true>({xb.raw(), w.data<uint16_t>(), false, bptr, yp, M, N, K});
#else
      // Same products without the dot-product instruction: bf16-rounded x, f32 math.
      Tensor xr = xb.to_f32();
      gemv<false>({xr.raw(), w.data<uint16_t>(), false, bptr, yp, M, N, K});
#endif
      return y;
    }
    gemv<false>({x.raw(), w.data<uint16_t>(), f16, bptr, yp, M, N, K});
    return y;
  }
  if (bf16_mode && w.dtype() == DType::BF16) {
    Tensor xb = to_bf16(x);
    dnnl_gemm(*gemm_, xb.raw(), DType::BF16, w.raw(), DType::BF16, true, bptr, yp, M, N, K);
  } else if (w.dtype() == DType::F32) {
    dnnl_gemm(*gemm_, x.raw(), DType::F32, w.raw(), DType::F32, true, bptr, yp, M, N, K);
  } else {
    gemm_f32_w16(x.f32(), w.data<uint16_t>(), w.dtype() == DType::F16, true, bptr, yp, M, N, K);
  }
  return y;
}

Tensor cpu::CpuBackend::matmul(const Context& c, const Tensor& a, const Tensor& b) {
  const int64_t K = b.dim(0), N = b.dim(1);
  const int64_t M = a.numel() / K;
  Shape out_shape = a.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  float* yp = y.mutable_f32();
  if (dtype_is_quantized(b.dtype())) {
    quant::matmul(b.dtype(), b.raw(), K, N, a.f32(), M, yp);
    return y;
  }
  if (c.precision == Precision::BF16 && b.dtype() == DType::BF16) {
    Tensor ab = to_bf16(a);
    dnnl_gemm(*gemm_, ab.raw(), DType::BF16, b.raw(), DType::BF16, false, nullptr, yp, M, N, K);
  } else if (b.dtype() == DType::F32) {
    dnnl_gemm(*gemm_, a.raw(), DType::F32, b.raw(), DType::F32, false, nullptr, yp, M, N, K);
  } else {
    gemm_f32_w16(a.f32(), b.data<uint16_t>(), b.dtype() == DType::F16, false, nullptr, yp, M, N, K);
  }
  return y;
}

void cpu::destroy_gemm_plans(GemmPlans* p) {
  delete p;
}
cpu::GemmPlans* cpu::make_gemm_plans() {
  return new GemmPlans();
}

}  // namespace ovis::ops
