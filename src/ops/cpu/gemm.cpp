// GEMM for the CPU backend: oneDNN matmul (brgemm/AMX kernels) for M > kGemvMaxRows, a
// bandwidth-bound hand-written GEMV for decode-sized M that streams each weight row once.
#include <immintrin.h>
#include <omp.h>

#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.hpp"
#include "ops/cpu/dnnl_util.hpp"
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

using dnnl::memory;
using cpu::dnnl_engine;
using cpu::dnnl_stream;

constexpr int64_t kGemvMaxRows = 4;

memory::data_type dnnl_dt(DType t) {
  switch (t) {
    case DType::F32: return memory::data_type::f32;
    case DType::BF16: return memory::data_type::bf16;
    case DType::F16: return memory::data_type::f16;
    default: fail("internal error: GEMM on unsupported dtype ", dtype_name(t));
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

dnnl::matmul& matmul_primitive(const GemmKey& key) {
  static std::mutex mu;
  static std::map<GemmKey, dnnl::matmul> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  memory::desc a_md({key.m, key.k}, dnnl_dt(key.a), memory::format_tag::ab);
  memory::desc b_md({key.k, key.n}, dnnl_dt(key.b),
                    key.b_transposed ? memory::format_tag::ba : memory::format_tag::ab);
  memory::desc c_md({key.m, key.n}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul::primitive_desc pd;
  if (key.bias) {
    memory::desc bias_md({1, key.n}, memory::data_type::f32, memory::format_tag::ab);
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, c_md), dnnl_engine());
  } else {
    pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), dnnl_engine());
  }
  return cache.emplace(key, dnnl::matmul(pd)).first->second;
}

// a [M,K] f32 or bf16, b is [N,K] (transposed) or [K,N], c [M,N] f32.
void dnnl_gemm(const void* a, DType adt, const void* b, DType bdt, bool b_transposed,
               const float* bias, float* c, int64_t m, int64_t n, int64_t k) {
  GemmKey key{m, n, k, adt, bdt, b_transposed, bias != nullptr};
  dnnl::matmul& prim = matmul_primitive(key);
  memory a_mem({{m, k}, dnnl_dt(adt), memory::format_tag::ab}, dnnl_engine(), const_cast<void*>(a));
  memory b_mem({{k, n}, dnnl_dt(bdt), b_transposed ? memory::format_tag::ba : memory::format_tag::ab},
               dnnl_engine(), const_cast<void*>(b));
  memory c_mem({{m, n}, memory::data_type::f32, memory::format_tag::ab}, dnnl_engine(), c);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
  if (bias)
    args.emplace(DNNL_ARG_BIAS, memory({{1, n}, memory::data_type::f32, memory::format_tag::ab},
                                       dnnl_engine(), const_cast<float*>(bias)));
  prim.execute(dnnl_stream(), args);
  dnnl_stream().wait();
}

Tensor to_bf16(const Tensor& x) {
  Tensor r = Tensor::empty(x.shape(), DType::BF16);
  const float* s = x.f32();
  uint16_t* o = r.data<uint16_t>();
  int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) o[i] = f32_to_bf16(s[i]);
  return r;
}

// ---- GEMV: y[m, n] = sum_k x[m, k] w[n, k] for m < M <= kGemvMaxRows ----

#if defined(__AVX512BF16__)
inline float hsum(__m512 v) { return _mm512_reduce_add_ps(v); }

// bf16 weights, bf16-rounded activations, fp32 accumulation (BF16 precision).
void gemv_bf16_bf16(const uint16_t* xb, const uint16_t* w, float* y, int64_t M, int64_t N,
                    int64_t K, int64_t ldy) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const uint16_t* wr = w + n * K;
    __m512 acc[kGemvMaxRows];
    for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      __m512bh wv = (__m512bh)_mm512_loadu_si512(wr + k);
      for (int m = 0; m < M; ++m)
        acc[m] = _mm512_dpbf16_ps(acc[m], (__m512bh)_mm512_loadu_si512(xb + m * K + k), wv);
    }
    if (k < K) {
      __mmask32 mask = (__mmask32)((1ull << (K - k)) - 1);
      __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(mask, wr + k);
      for (int m = 0; m < M; ++m)
        acc[m] = _mm512_dpbf16_ps(acc[m], (__m512bh)_mm512_maskz_loadu_epi16(mask, xb + m * K + k), wv);
    }
    for (int m = 0; m < M; ++m) y[m * ldy + n] = hsum(acc[m]);
  }
}
#endif

inline float load_w(const uint16_t* w, int64_t i, bool f16) {
  return f16 ? f16_to_f32(w[i]) : bf16_to_f32(w[i]);
}

// 16-bit weights upcast to fp32, fp32 activations (F32 precision).
void gemv_f32_w16(const float* x, const uint16_t* w, bool f16, float* y, int64_t M, int64_t N,
                  int64_t K, int64_t ldy) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const uint16_t* wr = w + n * K;
#if defined(__AVX512F__)
    if (!f16) {
      __m512 acc[kGemvMaxRows];
      for (int m = 0; m < M; ++m) acc[m] = _mm512_setzero_ps();
      int64_t k = 0;
      for (; k + 16 <= K; k += 16) {
        __m512 wv = _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(wr + k))), 16));
        for (int m = 0; m < M; ++m) acc[m] = _mm512_fmadd_ps(_mm512_loadu_ps(x + m * K + k), wv, acc[m]);
      }
      for (int m = 0; m < M; ++m) {
        float s = _mm512_reduce_add_ps(acc[m]);
        for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * bf16_to_f32(wr[kk]);
        y[m * ldy + n] = s;
      }
      continue;
    }
#endif
    for (int m = 0; m < M; ++m) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += x[m * K + k] * load_w(wr, k, f16);
      y[m * ldy + n] = s;
    }
  }
}

Tensor upcast_weight(const Tensor& w) { return w.to_f32(); }

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor* bias) {
  OVIS_ASSERT(x.dtype() == DType::F32 && w.ndim() == 2);
  const int64_t K = w.dim(1), N = w.dim(0);
  if (x.dim(-1) != K)
    fail("internal error: linear input width ", x.dim(-1), " vs weight ", shape_str(w.shape()));
  const int64_t M = x.numel() / K;
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  Tensor bias_f32;
  if (bias) bias_f32 = bias->dtype() == DType::F32 ? *bias : bias->to_f32();
  const float* bptr = bias ? bias_f32.f32() : nullptr;
  const bool bf16_mode = precision() == Precision::BF16;

  if (M <= kGemvMaxRows && w.dtype() != DType::F32) {
#if defined(__AVX512BF16__)
    if (bf16_mode && w.dtype() == DType::BF16) {
      Tensor xb = to_bf16(x);
      gemv_bf16_bf16(xb.data<uint16_t>(), w.data<uint16_t>(), y.f32(), M, N, K, N);
    } else
#endif
    {
      gemv_f32_w16(x.f32(), w.data<uint16_t>(), w.dtype() == DType::F16, y.f32(), M, N, K, N);
    }
    if (bptr)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) y.f32()[m * N + n] += bptr[n];
    return y;
  }
  if (bf16_mode && w.dtype() == DType::BF16) {
    Tensor xb = to_bf16(x);
    dnnl_gemm(xb.raw(), DType::BF16, w.raw(), DType::BF16, true, bptr, y.f32(), M, N, K);
  } else if (w.dtype() == DType::F32) {
    dnnl_gemm(x.raw(), DType::F32, w.raw(), DType::F32, true, bptr, y.f32(), M, N, K);
  } else {
    Tensor wf = upcast_weight(w);
    dnnl_gemm(x.raw(), DType::F32, wf.raw(), DType::F32, true, bptr, y.f32(), M, N, K);
  }
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  OVIS_ASSERT(a.dtype() == DType::F32 && b.ndim() == 2);
  const int64_t K = b.dim(0), N = b.dim(1);
  if (a.dim(-1) != K)
    fail("internal error: matmul inner dims ", shape_str(a.shape()), " x ", shape_str(b.shape()));
  const int64_t M = a.numel() / K;
  Shape out_shape = a.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  if (precision() == Precision::BF16 && b.dtype() == DType::BF16) {
    Tensor ab = to_bf16(a);
    dnnl_gemm(ab.raw(), DType::BF16, b.raw(), DType::BF16, false, nullptr, y.f32(), M, N, K);
  } else if (b.dtype() == DType::F32) {
    dnnl_gemm(a.raw(), DType::F32, b.raw(), DType::F32, false, nullptr, y.f32(), M, N, K);
  } else {
    Tensor bf = upcast_weight(b);
    dnnl_gemm(a.raw(), DType::F32, bf.raw(), DType::F32, false, nullptr, y.f32(), M, N, K);
  }
  return y;
}

}  // namespace ovis::ops
