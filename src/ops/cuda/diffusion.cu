// Diffusion ops on the device: the timestep embedding, the fused CFG + Euler step (every
// reference op rounded on its own: __fadd_rn/__fmul_rn are never contracted into FMAs), and the
// final pixel conversion.
#include <cmath>

#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

__global__ void timestep_embedding_kernel(float t, int half, float neg_log_period, MutElems o) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= half) return;
  const float scaled = __fmul_rn(neg_log_period, float(i));
  const float freq = float(exp(double(__fdiv_rn(scaled, float(half)))));
  const float arg = __fmul_rn(t, freq);
  double s, c;
  sincos(double(arg), &s, &c);
  store(o, i, float(c));
  store(o, half + i, float(s));
}

struct LatentMath {
  bool bf16;
  __device__ float r(float v) const { return bf16 ? round_to_bf16(v) : v; }
};

__global__ void guided_euler_kernel(MutElems img, Elems vc, Elems v1, Elems v2, bool edit, float s0,
                                    float s1, float dt, MutElems guided, int64_t n, bool bf16) {
  const LatentMath lm{bf16};
  OVIS_GRID_STRIDE(j, n) {
    float g;
    if (!edit) {
      // v = v_u + cfg·(v_c − v_u)
      const float cj = lm.r(load(vc, j)), uj = lm.r(load(v1, j));
      g = lm.r(__fadd_rn(uj, lm.r(__fmul_rn(s0, lm.r(__fsub_rn(cj, uj))))));
    } else {
      // v = v_nb + img_cfg·(v_nt − v_nb) + txt_cfg·(v_c − v_nt)
      const float cj = lm.r(load(vc, j)), nbj = lm.r(load(v1, j)), ntj = lm.r(load(v2, j));
      const float img_term = lm.r(__fmul_rn(s1, lm.r(__fsub_rn(ntj, nbj))));
      const float txt_term = lm.r(__fmul_rn(s0, lm.r(__fsub_rn(cj, ntj))));
      g = lm.r(__fadd_rn(lm.r(__fadd_rn(nbj, img_term)), txt_term));
    }
    if (guided.p) store(guided, j, g);
    store(img, j, lm.r(__fadd_rn(load(img, j), lm.r(__fmul_rn(dt, g)))));
  }
}

// x [C, H, W] -> [H, W, C] bytes: trunc(127.5·(clamp(x, −1, 1) + 1)), NaN -> 0.
__global__ void image_to_u8_kernel(Elems x, int64_t C, int64_t H, int64_t W, uint8_t* o) {
  OVIS_GRID_STRIDE(i, C * H * W) {
    const int64_t c = i % C, px = i / C, y = px / W, col = px % W;
    float v = load(x, (c * H + y) * W + col);
    v = v < -1.0f ? -1.0f : (1.0f < v ? 1.0f : v);
    v = __fmul_rn(__fadd_rn(v, 1.0f), 127.5f);
    o[i] = v >= 0.0f ? uint8_t(v) : uint8_t(0);
  }
}

}  // namespace

Tensor CudaBackend::timestep_embedding(const Context& c, float t, int dim, float max_period) {
  const int half = dim / 2;
  // The Python double −ln(max_period) enters the float32 product as a float32 scalar.
  const float neg_log_period = float(-std::log(double(max_period)));
  Tensor out = empty({1, dim}, c.act_dtype());
  timestep_embedding_kernel<<<unsigned((half + 127) / 128), 128, 0, stream()>>>(
      t, half, neg_log_period, mut_elems(out));
  OVIS_CU_LAUNCHED("timestep_embedding");
  return out;
}

void CudaBackend::guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v,
                                     Guidance g, float s0, float s1, float dt, Tensor* guided) {
  const int64_t n = img.numel();
  if (n == 0) return;
  const bool edit = g == Guidance::Edit;
  const MutElems out = guided ? mut_elems(*guided) : MutElems{nullptr, DType::F32};
  guided_euler_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(
      mut_elems(img), elems(v[0]), elems(v[1]), edit ? elems(v[2]) : Elems{}, edit, s0, s1, dt, out,
      n, c.precision == Precision::BF16);
  OVIS_CU_LAUNCHED("guided_euler_step_");
}

Tensor CudaBackend::image_to_u8(const Context&, const Tensor& x) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor out = empty({H, W, C}, DType::U8);
  if (out.numel() == 0) return out;
  image_to_u8_kernel<<<blocks_for(out.numel()), kThreads, 0, stream()>>>(
      elems(x), C, H, W, static_cast<uint8_t*>(out.device_ptr()));
  OVIS_CU_LAUNCHED("image_to_u8");
  return out;
}

}  // namespace ovis::ops::cuda
