// Activations, elementwise and layout ops for the CPU backend.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/vec_math.hpp"

namespace ovis::ops::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;

// f(begin, end) over [0, n) in per-thread contiguous chunks (multiples of 16 elements).
template <class F>
void for_chunks(int64_t n, F f) {
#pragma omp parallel if (n > kParallelMin)
  {
    const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t chunk = ((n + T - 1) / T + 15) / 16 * 16;
    const int64_t b = std::min(n, t * chunk), e = std::min(n, b + chunk);
    if (b < e) f(b, e);
  }
}

// o[i] = x[i] / (1 + e^(-Y(x[i]))) (· u[i] when u is given), vectorised; Y has a float and a
// vector call operator.
template <class Y>
void x_sigmoid(const float* x, const float* u, float* o, int64_t n, Y y) {
  for_chunks(n, [&](int64_t b, int64_t e) {
    int64_t i = b;
#if defined(__AVX512F__)
    for (; i < e; i += 16) {
      const __mmask16 k = e - i >= 16 ? __mmask16(0xffff) : tail_mask(e - i);
      const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
      __m512 r = x_sigmoid_ps(v, y(v));
      if (u) r = _mm512_mul_ps(r, _mm512_maskz_loadu_ps(k, u + i));
      _mm512_mask_storeu_ps(o + i, k, r);
    }
#elif defined(__AVX2__) && defined(__FMA__)
    for (; i < e; i += 8) {
      const __m256i k = tail_mask8(e - i < 8 ? e - i : 8);
      const __m256 v = _mm256_maskload_ps(x + i, k);
      __m256 r = x_sigmoid_ps(v, y(v));
      if (u) r = _mm256_mul_ps(r, _mm256_maskload_ps(u + i, k));
      _mm256_maskstore_ps(o + i, k, r);
    }
#endif
    for (; i < e; ++i) o[i] = x[i] / (1.0f + std::exp(-y(x[i]))) * (u ? u[i] : 1.0f);
  });
}

struct SiluY {
  float operator()(float v) const { return v; }
#if defined(__AVX512F__)
  __m512 operator()(__m512 v) const {
    return v;
  }
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 operator()(__m256 v) const {
    return v;
  }
#endif
};

// GELU-tanh as x·sigmoid(2u), u = √(2/π)·(x + 0.044715·x³): 0.5·(1 + tanh(u)) = sigmoid(2u).
struct GeluTanhY {
  static constexpr float k2K0 = 2 * 0.7978845608028654f, kK1 = 0.044715f;
  float operator()(float v) const { return k2K0 * (v + kK1 * v * v * v); }
#if defined(__AVX512F__)
  __m512 operator()(__m512 v) const {
    const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    return _mm512_mul_ps(_mm512_set1_ps(k2K0), _mm512_fmadd_ps(_mm512_set1_ps(kK1), v3, v));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 operator()(__m256 v) const {
    const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    return _mm256_mul_ps(_mm256_set1_ps(k2K0), _mm256_fmadd_ps(_mm256_set1_ps(kK1), v3, v));
  }
#endif
};

}  // namespace

void CpuBackend::silu_(const Context&, Tensor& x) {
  x_sigmoid(x.f32(), nullptr, x.mutable_f32(), x.numel(), SiluY{});
}

void CpuBackend::gelu_tanh_(const Context&, Tensor& x) {
  x_sigmoid(x.f32(), nullptr, x.mutable_f32(), x.numel(), GeluTanhY{});
}

Tensor CpuBackend::swiglu(const Context&, const Tensor& gate, const Tensor& up) {
  Tensor y = Tensor::empty(gate.shape());
  x_sigmoid(gate.f32(), up.f32(), y.mutable_f32(), gate.numel(), SiluY{});
  return y;
}

void CpuBackend::add_(const Context&, Tensor& y, const Tensor& x) {
  float* o = y.mutable_f32();
  const float* s = x.f32();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) o[i] += s[i];
}

void CpuBackend::affine_(const Context&, Tensor& y, float scale, float shift) {
  float* o = y.mutable_f32();
  const int64_t n = y.numel();
  if (shift == 0.0f) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) o[i] *= scale;
  } else {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) o[i] = o[i] * scale + shift;
  }
}

void CpuBackend::clamp_(const Context&, Tensor& y, float lo, float hi) {
  float* o = y.mutable_f32();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) o[i] = std::min(std::max(o[i], lo), hi);
}

Tensor CpuBackend::modulate(const Context&, const Tensor& x, const Tensor& shift_t,
                            const Tensor& scale_t) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  const float *shift = shift_t.f32(), *scale = scale_t.f32();
  float* yp = y.mutable_f32();
#pragma omp parallel for schedule(static) if (M * D > kParallelMin)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t d = 0; d < D; ++d) yp[m * D + d] = xp[m * D + d] * (1.0f + scale[d]) + shift[d];
  return y;
}

void CpuBackend::gated_add_(const Context&, Tensor& y, const Tensor& x, const Tensor* gate_t) {
  const int64_t D = y.dim(-1), M = y.numel() / D;
  float* yp = y.mutable_f32();
  const float* xp = x.f32();
  const float* gate = gate_t ? gate_t->f32() : nullptr;
#pragma omp parallel for schedule(static) if (M * D > kParallelMin)
  for (int64_t m = 0; m < M; ++m) {
    if (gate) {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) yp[m * D + d] += gate[d] * xp[m * D + d];
    } else {
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) yp[m * D + d] += xp[m * D + d];
    }
  }
}

void CpuBackend::softmax_(const Context&, Tensor& x) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  float* p = x.mutable_f32();
#pragma omp parallel for schedule(static) if (M * D > kParallelMin)
  for (int64_t m = 0; m < M; ++m) {
    float* r = p + m * D;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t d = 0; d < D; ++d) mx = std::max(mx, r[d]);
    double s = 0;
    int64_t d = 0;
#if defined(__AVX512F__)
    const __m512 vm = _mm512_set1_ps(mx);
    __m512d acc = _mm512_setzero_pd();
    for (; d + 16 <= D; d += 16) {
      const __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(r + d), vm));
      _mm512_storeu_ps(r + d, e);
      acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
      acc = _mm512_add_pd(
          acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    s = _mm512_reduce_add_pd(acc);
#elif defined(__AVX2__) && defined(__FMA__)
    const __m256 vm = _mm256_set1_ps(mx);
    __m256d acc = _mm256_setzero_pd();
    for (; d + 8 <= D; d += 8) {
      const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(r + d), vm));
      _mm256_storeu_ps(r + d, e);
      acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
      acc = _mm256_add_pd(acc, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    alignas(32) double part[4];
    _mm256_store_pd(part, acc);
    s = (part[0] + part[1]) + (part[2] + part[3]);
#endif
    for (; d < D; ++d) {
      r[d] = std::exp(r[d] - mx);
      s += r[d];
    }
    const float inv = float(1.0 / s);
#pragma omp simd
    for (int64_t d2 = 0; d2 < D; ++d2) r[d2] *= inv;
  }
}

void CpuBackend::round_bf16_(const Context&, Tensor& x) {
  float* p = x.mutable_f32();
  const int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) p[i] = round_bf16(p[i]);
}

void CpuBackend::copy_(const Context&, Tensor& dst, const Tensor& src) {
  const int64_t n = src.numel();
  if (dst.dtype() == src.dtype()) {
    std::memcpy(dst.mutable_raw(), src.raw(), src.nbytes());
    return;
  }
  auto load = [&](int64_t i) -> float {
    switch (src.dtype()) {
      case DType::BF16:
        return bf16_to_f32(src.data<uint16_t>()[i]);
      case DType::F16:
        return f16_to_f32(src.data<uint16_t>()[i]);
      default:
        return src.f32()[i];
    }
  };
  void* o = dst.mutable_raw();
  const DType dt = dst.dtype();
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float v = load(i);
    if (dt == DType::F32)
      static_cast<float*>(o)[i] = v;
    else if (dt == DType::BF16)
      static_cast<uint16_t*>(o)[i] = f32_to_bf16(v);
    else
      static_cast<uint16_t*>(o)[i] = f32_to_f16(v);
  }
}

}  // namespace ovis::ops::cpu
