// Activations and elementwise ops: fp32 arithmetic, one rounding to the tensor's dtype on store.
// New tensors are in the context's activation dtype.
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

struct Silu {
  __device__ float operator()(float v) const { return v / (1.0f + expf(-v)); }
};
// GELU-tanh as x·sigmoid(2u), u = √(2/π)·(x + 0.044715·x³), as the CPU backend writes it.
struct GeluTanh {
  __device__ float operator()(float v) const {
    const float u = 2 * 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return v / (1.0f + expf(-u));
  }
};
struct Affine {
  float scale, shift;
  __device__ float operator()(float v) const { return v * scale + shift; }
};
// std::min(std::max(v, lo), hi): NaN stays NaN.
struct Clamp {
  float lo, hi;
  __device__ float operator()(float v) const {
    v = v < lo ? lo : v;
    return hi < v ? hi : v;
  }
};
struct RoundBf16 {
  __device__ float operator()(float v) const { return round_to_bf16(v); }
};

template <class Op>
__global__ void unary_kernel(MutElems x, int64_t n, Op op) {
  OVIS_GRID_STRIDE(i, n) store(x, i, op(load(x, i)));
}

template <class Op>
void unary(CudaBackend& b, Tensor& x, Op op, const char* name) {
  const int64_t n = x.numel();
  if (n == 0) return;
  unary_kernel<<<blocks_for(n), kThreads, 0, b.stream()>>>(mut_elems(x), n, op);
  check(cudaGetLastError(), name, __FILE__, __LINE__);
}

__global__ void swiglu_kernel(Elems g, Elems u, MutElems y, int64_t n) {
  OVIS_GRID_STRIDE(i, n) {
    const float v = load(g, i);
    store(y, i, v / (1.0f + expf(-v)) * load(u, i));
  }
}

__global__ void add_kernel(MutElems y, Elems x, int64_t n) {
  OVIS_GRID_STRIDE(i, n) store(y, i, load(y, i) + load(x, i));
}

// out[m, d] = x[m, d]·(1 + scale[d]) + shift[d]
__global__ void modulate_kernel(Elems x, Elems shift, Elems scale, MutElems y, int64_t n,
                                int64_t D) {
  OVIS_GRID_STRIDE(i, n) {
    const int64_t d = i % D;
    store(y, i, load(x, i) * (1.0f + load(scale, d)) + load(shift, d));
  }
}

// y[m, d] += gate[d]·x[m, d] (gate.p null: gate 1)
__global__ void gated_add_kernel(MutElems y, Elems x, Elems gate, int64_t n, int64_t D) {
  OVIS_GRID_STRIDE(i, n) {
    const float g = gate.p ? load(gate, i % D) : 1.0f;
    store(y, i, load(y, i) + g * load(x, i));
  }
}

// One block per row: max, Σ e^(x - max) in double, then e^(x - max) · (1 / Σ).
__global__ void softmax_kernel(MutElems x, int64_t D) {
  __shared__ float fs[32];
  __shared__ double ds[32];
  const int64_t base = int64_t(blockIdx.x) * D;
  float mx = -INFINITY;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) mx = fmaxf(mx, load(x, base + d));
  mx = block_max(mx, fs);
  double s = 0;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += expf(load(x, base + d) - mx);
  s = block_sum(s, ds);
  const float inv = float(1.0 / s);
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x)
    store(x, base + d, expf(load(x, base + d) - mx) * inv);
}

__global__ void convert_kernel(Elems src, MutElems dst, int64_t n) {
  OVIS_GRID_STRIDE(i, n) store(dst, i, load(src, i));
}

}  // namespace

void CudaBackend::silu_(const Context&, Tensor& x) {
  unary(*this, x, Silu{}, "silu_");
}

void CudaBackend::gelu_tanh_(const Context&, Tensor& x) {
  unary(*this, x, GeluTanh{}, "gelu_tanh_");
}

void CudaBackend::affine_(const Context&, Tensor& y, float scale, float shift) {
  unary(*this, y, Affine{scale, shift}, "affine_");
}

void CudaBackend::clamp_(const Context&, Tensor& y, float lo, float hi) {
  unary(*this, y, Clamp{lo, hi}, "clamp_");
}

void CudaBackend::round_bf16_(const Context&, Tensor& x) {
  unary(*this, x, RoundBf16{}, "round_bf16_");
}

Tensor CudaBackend::swiglu(const Context& c, const Tensor& gate, const Tensor& up) {
  Tensor y = empty(gate.shape(), c.act_dtype());
  const int64_t n = gate.numel();
  if (n) {
    swiglu_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(elems(gate), elems(up), mut_elems(y),
                                                            n);
    OVIS_CU_LAUNCHED("swiglu");
  }
  return y;
}

void CudaBackend::add_(const Context&, Tensor& y, const Tensor& x) {
  const int64_t n = y.numel();
  if (!n) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(mut_elems(y), elems(x), n);
  OVIS_CU_LAUNCHED("add_");
}

Tensor CudaBackend::modulate(const Context& c, const Tensor& x, const Tensor& shift,
                             const Tensor& scale) {
  Tensor y = empty(x.shape(), c.act_dtype());
  const int64_t n = x.numel(), D = x.dim(-1);
  if (n) {
    modulate_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(elems(x), elems(shift), elems(scale),
                                                              mut_elems(y), n, D);
    OVIS_CU_LAUNCHED("modulate");
  }
  return y;
}

void CudaBackend::gated_add_(const Context&, Tensor& y, const Tensor& x, const Tensor* gate) {
  const int64_t n = y.numel(), D = y.dim(-1);
  if (!n) return;
  const Elems g = gate ? elems(*gate) : Elems{nullptr, DType::F32};
  gated_add_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(mut_elems(y), elems(x), g, n, D);
  OVIS_CU_LAUNCHED("gated_add_");
}

void CudaBackend::softmax_(const Context&, Tensor& x) {
  const int64_t D = x.dim(-1);
  if (x.numel() == 0 || D == 0) return;
  const int64_t M = x.numel() / D;
  for (int64_t m0 = 0; m0 < M; m0 += 65535) {
    const int64_t rows = std::min<int64_t>(65535, M - m0);
    MutElems e = mut_elems(x);
    e.p = static_cast<char*>(e.p) + size_t(m0 * D) * dtype_size(x.dtype());
    softmax_kernel<<<unsigned(rows), kThreads, 0, stream()>>>(e, D);
    OVIS_CU_LAUNCHED("softmax_");
  }
}

void CudaBackend::copy_(const Context&, Tensor& dst, const Tensor& src) {
  const int64_t n = src.numel();
  if (n == 0) return;
  if (dst.dtype() == src.dtype()) {
    OVIS_CU(cudaMemcpyAsync(dst.device_ptr(), src.device_ptr(), src.nbytes(),
                            cudaMemcpyDeviceToDevice, stream()));
    return;
  }
  convert_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(elems(src), mut_elems(dst), n);
  OVIS_CU_LAUNCHED("copy_");
}

}  // namespace ovis::ops::cuda
