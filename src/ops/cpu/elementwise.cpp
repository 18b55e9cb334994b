// Activations, elementwise and layout ops for the CPU backend.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/kernels/kernels.hpp"

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

// o = x·σ(y(x)) (· u) over n elements in per-thread chunks (kernels::x_sigmoid).
void x_sigmoid(bool gelu_tanh, const float* x, const float* u, float* o, int64_t n) {
  for_chunks(n, [&](int64_t b, int64_t e) {
    kernels::x_sigmoid(gelu_tanh, x + b, u ? u + b : nullptr, o + b, e - b);
  });
}

}  // namespace

void CpuBackend::silu_(const Context&, Tensor& x) {
  x_sigmoid(false, x.f32(), nullptr, x.mutable_f32(), x.numel());
}

void CpuBackend::gelu_tanh_(const Context&, Tensor& x) {
  x_sigmoid(true, x.f32(), nullptr, x.mutable_f32(), x.numel());
}

Tensor CpuBackend::swiglu(const Context&, const Tensor& gate, const Tensor& up) {
  Tensor y = Tensor::empty(gate.shape());
  x_sigmoid(false, gate.f32(), up.f32(), y.mutable_f32(), gate.numel());
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
  for (int64_t m = 0; m < M; ++m) kernels::softmax_row(p + m * D, D);
}

void CpuBackend::round_bf16_(const Context&, Tensor& x) {
  float* p = x.mutable_f32();
  for_chunks(x.numel(), [&](int64_t b, int64_t e) { kernels::round_bf16(p + b, e - b, p + b); });
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
