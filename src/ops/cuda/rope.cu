// Rotary tables and the rotation. Frequencies travel as kernel parameters (no upload), so the
// tables of a decode step can be built inside a captured graph. cos/sin are evaluated in double
// and rounded once, i.e. correctly rounded like the host's libm, for the float angle of the HF
// tables and the double angle of FLUX's.
#include "core/error.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

constexpr int kMaxPairs = 256;

struct RopeParams {
  double omega[kMaxPairs];
  int8_t axis[kMaxPairs];
  int pairs;
  bool f64_angles;
  bool round_bf16;
};

RopeParams params_of(const RopeFreqs& f) {
  if (f.pairs() > kMaxPairs)
    fail("internal error: rotary tables of ", f.pairs(), " pairs (the CUDA backend supports ",
         kMaxPairs, ")");
  RopeParams p{};
  for (int64_t i = 0; i < f.pairs(); ++i) {
    p.omega[i] = f.omega[size_t(i)];
    p.axis[i] = int8_t(f.axis[size_t(i)]);
  }
  p.pairs = int(f.pairs());
  p.f64_angles = f.f64_angles;
  p.round_bf16 = f.round_bf16;
  return p;
}

// Positions: positions[l·axes + axis] when given, else start (+ *start_dev) + l.
__global__ void rope_table_kernel(const float* positions, int axes, int64_t start,
                                  const float* start_dev, int64_t L, RopeParams p, float* cos_t,
                                  float* sin_t) {
  const int64_t base = start + (start_dev ? position(start_dev) : 0);
  OVIS_GRID_STRIDE(i, L * p.pairs) {
    const int64_t l = i / p.pairs;
    const int k = int(i % p.pairs);
    const float pos = positions ? positions[l * axes + p.axis[k]] : float(base + l);
    double c, s;
    if (p.f64_angles) {
      sincos(double(pos) * p.omega[k], &s, &c);
    } else {
      const float angle = pos * float(p.omega[k]);
      sincos(double(angle), &s, &c);
    }
    float cf = float(c), sf = float(s);
    if (p.round_bf16) {
      cf = round_to_bf16(cf);
      sf = round_to_bf16(sf);
    }
    cos_t[i] = cf;
    sin_t[i] = sf;
  }
}

__global__ void rope_kernel(MutElems x, int64_t L, int heads, int64_t D, int64_t half,
                            const float* cos_t, const float* sin_t, bool interleaved) {
  OVIS_GRID_STRIDE(i, L * heads * half) {
    const int64_t d = i % half, lh = i / half, l = lh / heads;
    const float c = cos_t[l * half + d], s = sin_t[l * half + d];
    const int64_t base = lh * D;
    const int64_t ia = interleaved ? base + 2 * d : base + d;
    const int64_t ib = interleaved ? ia + 1 : base + d + half;
    const float a = load(x, ia), b = load(x, ib);
    if (interleaved) {
      store(x, ia, c * a - s * b);
      store(x, ib, s * a + c * b);
    } else {
      store(x, ia, a * c - b * s);
      store(x, ib, b * c + a * s);
    }
  }
}

RopeTable make_table(CudaBackend& be, int64_t L, const RopeFreqs& f, const float* positions,
                     int axes, int64_t start, const float* start_dev) {
  RopeTable t{be.empty({L, f.pairs()}, DType::F32), be.empty({L, f.pairs()}, DType::F32)};
  if (L * f.pairs() == 0) return t;
  rope_table_kernel<<<blocks_for(L * f.pairs()), kThreads, 0, be.stream()>>>(
      positions, axes, start, start_dev, L, params_of(f), static_cast<float*>(t.cos.device_ptr()),
      static_cast<float*>(t.sin.device_ptr()));
  OVIS_CU_LAUNCHED("rope_table");
  return t;
}

}  // namespace

RopeTable CudaBackend::rope_table(const Context&, const Tensor& positions, const RopeFreqs& f) {
  return make_table(*this, positions.dim(0), f, static_cast<const float*>(positions.device_ptr()),
                    int(positions.dim(1)), 0, nullptr);
}

RopeTable CudaBackend::rope_table(const Context&, int64_t start, int64_t L, const RopeFreqs& f) {
  return make_table(*this, L, f, nullptr, 1, start, nullptr);
}

RopeTable CudaBackend::rope_table_at(const Context&, const Tensor& pos, int64_t L,
                                     const RopeFreqs& f) {
  return make_table(*this, L, f, nullptr, 1, 0, static_cast<const float*>(pos.device_ptr()));
}

void CudaBackend::rope_(const Context&, Tensor& x, int heads, const RopeTable& t,
                        RopeLayout layout) {
  const int64_t L = x.dim(0), D = x.numel() / L / heads, half = t.cos.dim(-1);
  if (L * heads * half == 0) return;
  rope_kernel<<<blocks_for(L * heads * half), kThreads, 0, stream()>>>(
      mut_elems(x), L, heads, D, half, static_cast<const float*>(t.cos.device_ptr()),
      static_cast<const float*>(t.sin.device_ptr()), layout == RopeLayout::Interleaved);
  OVIS_CU_LAUNCHED("rope_");
}

}  // namespace ovis::ops::cuda
