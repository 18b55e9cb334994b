// Activations, elementwise and layout ops for the CPU backend.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "ops/cpu/vec_math.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

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

// o[i] = x[i] / (1 + e^(-Y(x[i]))) (· u[i] when u is given), vectorised; Y has a float and an
// __m512 call operator.
template <class Y>
void x_sigmoid(const float* x, const float* u, float* o, int64_t n, Y y) {
  for_chunks(n, [&](int64_t b, int64_t e) {
    int64_t i = b;
#if defined(__AVX512F__)
    for (; i < e; i += 16) {
      const __mmask16 k = e - i >= 16 ? __mmask16(0xffff) : cpu::tail_mask(e - i);
      const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
      __m512 r = cpu::x_sigmoid_ps(v, y(v));
      if (u) r = _mm512_mul_ps(r, _mm512_maskz_loadu_ps(k, u + i));
      _mm512_mask_storeu_ps(o + i, k, r);
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
#endif
};

}  // namespace

void silu_(Tensor& x) {
  x_sigmoid(x.f32(), nullptr, x.f32(), x.numel(), SiluY{});
}

void gelu_tanh_(Tensor& x) {
  x_sigmoid(x.f32(), nullptr, x.f32(), x.numel(), GeluTanhY{});
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  OVIS_ASSERT(gate.numel() == up.numel());
  Tensor y = Tensor::empty(gate.shape());
  x_sigmoid(gate.f32(), up.f32(), y.f32(), gate.numel(), SiluY{});
  return y;
}

void add_(Tensor& y, const Tensor& x) {
  OVIS_ASSERT(y.numel() == x.numel());
  float* o = y.f32();
  const float* s = x.f32();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) o[i] += s[i];
}

void scale_(Tensor& y, float s) {
  float* o = y.f32();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) o[i] *= s;
}

Tensor modulate(const Tensor& x, const float* shift, const float* scale) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  Tensor y = Tensor::empty(x.shape());
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for schedule(static) if (M * D > kParallelMin)
  for (int64_t m = 0; m < M; ++m)
    for (int64_t d = 0; d < D; ++d) yp[m * D + d] = xp[m * D + d] * (1.0f + scale[d]) + shift[d];
  return y;
}

void gated_add_(Tensor& y, const Tensor& x, const float* gate) {
  OVIS_ASSERT(y.numel() == x.numel());
  const int64_t D = y.dim(-1), M = y.numel() / D;
  float* yp = y.f32();
  const float* xp = x.f32();
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

void softmax_(Tensor& x) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  float* p = x.f32();
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
      const __m512 e = cpu::exp_ps(_mm512_sub_ps(_mm512_loadu_ps(r + d), vm));
      _mm512_storeu_ps(r + d, e);
      acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
      acc = _mm512_add_pd(
          acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    s = _mm512_reduce_add_pd(acc);
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

Tensor cols(const Tensor& x, int64_t begin, int64_t end) {
  const int64_t N = x.dim(-1), M = x.numel() / N, W = end - begin;
  OVIS_ASSERT(begin >= 0 && begin <= end && end <= N);
  Shape s = x.shape();
  s.back() = W;
  Tensor y = Tensor::empty(s);
  const float* xp = x.f32();
  float* yp = y.f32();
  for (int64_t m = 0; m < M; ++m) std::memcpy(yp + m * W, xp + m * N + begin, size_t(W) * 4);
  return y;
}

Tensor concat_cols(const std::vector<Tensor>& parts) {
  OVIS_ASSERT(!parts.empty());
  const int64_t M = parts[0].numel() / parts[0].dim(-1);
  int64_t N = 0;
  for (const auto& p : parts) {
    OVIS_ASSERT(p.numel() / p.dim(-1) == M);
    N += p.dim(-1);
  }
  Shape s = parts[0].shape();
  s.back() = N;
  Tensor y = Tensor::empty(s);
  int64_t off = 0;
  for (const auto& p : parts) {
    const int64_t W = p.dim(-1);
    for (int64_t m = 0; m < M; ++m)
      std::memcpy(y.f32() + m * N + off, p.f32() + m * W, size_t(W) * 4);
    off += W;
  }
  return y;
}

Tensor concat_rows(const std::vector<Tensor>& parts) {
  OVIS_ASSERT(!parts.empty());
  Shape s = parts[0].shape();
  int64_t rows = 0;
  for (const auto& p : parts) {
    OVIS_ASSERT(p.ndim() == int(s.size()) &&
                p.numel() / std::max<int64_t>(p.dim(0), 1) ==
                    parts[0].numel() / std::max<int64_t>(parts[0].dim(0), 1));
    rows += p.dim(0);
  }
  s[0] = rows;
  Tensor y = Tensor::empty(s);
  char* o = static_cast<char*>(y.raw());
  for (const auto& p : parts) {
    std::memcpy(o, p.raw(), p.nbytes());
    o += p.nbytes();
  }
  return y;
}

Tensor embedding(const Tensor& table, const std::vector<int64_t>& ids) {
  const int64_t V = table.dim(0), D = table.dim(1);
  Tensor y = Tensor::empty({int64_t(ids.size()), D});
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= V)
      fail("token id ", ids[i], " outside the embedding table of ", V, " rows");
    float* o = y.f32() + int64_t(i) * D;
    const int64_t base = ids[i] * D;
    if (table.dtype() == DType::F32) {
      std::memcpy(o, table.f32() + base, size_t(D) * 4);
    } else if (table.dtype() == DType::BF16) {
      const uint16_t* s = table.data<uint16_t>() + base;
      for (int64_t d = 0; d < D; ++d) o[d] = bf16_to_f32(s[d]);
    } else {
      for (int64_t d = 0; d < D; ++d) o[d] = weight_at(table, base + d);
    }
  }
  return y;
}

Tensor mean_rows(const Tensor& x) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  Tensor y = Tensor::empty({1, D});
  for (int64_t d = 0; d < D; ++d) {
    double s = 0;
    for (int64_t m = 0; m < M; ++m) s += x.f32()[m * D + d];
    y.f32()[d] = float(s / double(M));
  }
  return y;
}

void rope_(Tensor& x, int heads, const Tensor& cos, const Tensor& sin, RopeLayout layout) {
  const int64_t L = x.dim(0);
  const int64_t D = x.numel() / L / heads;
  const int64_t half = cos.dim(-1);
  OVIS_ASSERT(cos.dim(0) == L && sin.dim(0) == L && 2 * half <= D);
  float* p = x.f32();
#pragma omp parallel for schedule(static) if (L * heads * D > kParallelMin)
  for (int64_t l = 0; l < L; ++l) {
    const float* c = cos.f32() + l * half;
    const float* s = sin.f32() + l * half;
    for (int h = 0; h < heads; ++h) {
      float* v = p + (l * heads + h) * D;
      if (layout == RopeLayout::HalfSplit) {
        for (int64_t d = 0; d < half; ++d) {
          const float a = v[d], b = v[d + half];
          v[d] = a * c[d] - b * s[d];
          v[d + half] = b * c[d] + a * s[d];
        }
      } else {
        for (int64_t d = 0; d < half; ++d) {
          const float a = v[2 * d], b = v[2 * d + 1];
          v[2 * d] = c[d] * a - s[d] * b;
          v[2 * d + 1] = s[d] * a + c[d] * b;
        }
      }
    }
  }
}

Tensor upsample_nearest2x(const Tensor& x) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor y = Tensor::empty({C, 2 * H, 2 * W});
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < 2 * H; ++h) {
      const float* r = x.f32() + (c * H + h / 2) * W;
      float* o = y.f32() + (c * 2 * H + h) * 2 * W;
      for (int64_t w = 0; w < 2 * W; ++w) o[w] = r[w / 2];
    }
  return y;
}

}  // namespace ovis::ops
