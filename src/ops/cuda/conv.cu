// 2-D convolution through cuDNN (NCHW, batch 1). F32 precision convolves in plain fp32
// (CUDNN_FMA_MATH: no TF32, the goldens' tolerances); BF16 precision in bf16 with fp32
// accumulation on tensor cores, falling back to fp32 where cuDNN offers no bf16 algorithm.
// A 'same' convolution runs in row bands like the CPU backend's: each band of P(x) (the
// prologue, GroupNorm+SiLU or a nearest 2x upsample, applied into a band buffer, zero rows
// outside the image) is convolved with vertical padding 0 and stored into the output with the
// bias, so neither P(x) nor a padded copy ever exists for the whole image.
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"
#include "ops/cuda/prepared.hpp"

namespace ovis::ops::cuda {

namespace {

constexpr size_t kMaxWorkspace = size_t(1) << 30;

struct ConvKey {
  int64_t c, h, w, o, kh, kw;
  int ph, pw, stride;
  DType t;
  bool operator<(const ConvKey& k) const {
    return std::tie(c, h, w, o, kh, kw, ph, pw, stride, t) <
           std::tie(k.c, k.h, k.w, k.o, k.kh, k.kw, k.ph, k.pw, k.stride, k.t);
  }
};

struct ConvAlgo {
  cudnnConvolutionFwdAlgo_t algo{};
  cudnnMathType_t math{};
  size_t workspace = 0;
};

// cuDNN descriptors of one problem (made per call: cheap, and nothing is shared).
struct ConvDescs {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ConvDescs(const ConvKey& k, int64_t oh, int64_t ow) {
    const cudnnDataType_t dt = k.t == DType::BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    OVIS_CU(cudnnCreateTensorDescriptor(&x));
    OVIS_CU(cudnnCreateTensorDescriptor(&y));
    OVIS_CU(cudnnCreateFilterDescriptor(&w));
    OVIS_CU(cudnnCreateConvolutionDescriptor(&conv));
    OVIS_CU(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, dt, 1, int(k.c), int(k.h), int(k.w)));
    OVIS_CU(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, dt, 1, int(k.o), int(oh), int(ow)));
    OVIS_CU(cudnnSetFilter4dDescriptor(w, dt, CUDNN_TENSOR_NCHW, int(k.o), int(k.c), int(k.kh),
                                       int(k.kw)));
    OVIS_CU(cudnnSetConvolution2dDescriptor(conv, k.ph, k.pw, k.stride, k.stride, 1, 1,
                                            CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  }
  ~ConvDescs() {
    cudnnDestroyTensorDescriptor(x);
    cudnnDestroyTensorDescriptor(y);
    cudnnDestroyFilterDescriptor(w);
    cudnnDestroyConvolutionDescriptor(conv);
  }
};

}  // namespace

struct ConvPlans {
  std::mutex mu;
  // Per problem, the algorithms cuDNN's heuristic offers that we accept, best first; one that
  // fails when run is dropped and the next one tried.
  std::map<ConvKey, std::vector<ConvAlgo>> algos;
};

ConvPlans* make_conv_plans() {
  return new ConvPlans();
}
void destroy_conv_plans(ConvPlans* p) {
  delete p;
}

namespace {

// The prologue applied to image rows [row0, row0 + rows) of P(x) ([C, Hp, Wp]), zero outside.
struct BandSource {
  Elems x;
  int64_t C, H, W;  // x
  int kind;         // 0 none, 1 GroupNorm+SiLU, 2 upsample 2x
  const float* stats;
  Elems nw, nb;
  int64_t cpg;
};

__global__ void band_kernel(BandSource s, int64_t row0, int64_t rows, int64_t Hp, int64_t Wp,
                            MutElems band) {
  OVIS_GRID_STRIDE(i, s.C * rows * Wp) {
    const int64_t c = i / (rows * Wp), r = (i / Wp) % rows, col = i % Wp;
    const int64_t y = row0 + r;
    float v = 0.0f;
    if (y >= 0 && y < Hp) {
      if (s.kind == 2) {
        v = load(s.x, (c * s.H + y / 2) * s.W + col / 2);
      } else {
        v = load(s.x, (c * s.H + y) * s.W + col);
        if (s.kind == 1) {
          // Same arithmetic as group_norm followed by silu_.
          const int64_t g = c / s.cpg;
          const float scale = s.stats[2 * g + 1] * load(s.nw, c), shift = load(s.nb, c);
          v = (v - s.stats[2 * g]) * scale + shift;
          v = v / (1.0f + expf(-v));
        }
      }
    }
    store(band, i, v);
  }
}

// y[o, row0 + r, col] = band[o, r, col] + bias[o]
__global__ void band_store_kernel(Elems band, int64_t O, int64_t rows, int64_t W, int64_t H,
                                  int64_t row0, const float* bias, MutElems y) {
  OVIS_GRID_STRIDE(i, O * rows * W) {
    const int64_t o = i / (rows * W), r = (i / W) % rows, col = i % W;
    store(y, (o * H + row0 + r) * W + col, load(band, i) + (bias ? bias[o] : 0.0f));
  }
}

__global__ void bias_kernel(MutElems y, int64_t O, int64_t hw, const float* bias) {
  OVIS_GRID_STRIDE(i, O * hw) store(y, i, load(y, i) + bias[i / hw]);
}

// x zero-padded by (top, left) into [C, Hp, Wp].
__global__ void pad_kernel(Elems x, int64_t C, int64_t H, int64_t W, int64_t top, int64_t left,
                           int64_t Hp, int64_t Wp, MutElems out) {
  OVIS_GRID_STRIDE(i, C * Hp * Wp) {
    const int64_t c = i / (Hp * Wp), r = (i / Wp) % Hp - top, col = i % Wp - left;
    store(out, i, r >= 0 && r < H && col >= 0 && col < W ? load(x, (c * H + r) * W + col) : 0.0f);
  }
}

std::vector<ConvAlgo> find_algos(CudaBackend& be, const ConvKey& k, const ConvDescs& d) {
  ConvPlans& plans = be.conv_plans();
  std::lock_guard<std::mutex> lock(plans.mu);
  auto it = plans.algos.find(k);
  if (it != plans.algos.end()) return it->second;
  std::vector<ConvAlgo> found;
  const cudnnMathType_t want = k.t == DType::F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
  OVIS_CU(cudnnSetConvolutionMathType(d.conv, want));
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n = 0;
  OVIS_CU(cudnnGetConvolutionForwardAlgorithm_v7(be.state().dnn(), d.x, d.w, d.conv, d.y,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
  for (int i = 0; i < n; ++i) {
    const auto& p = perf[i];
    if (p.status != CUDNN_STATUS_SUCCESS || p.memory > kMaxWorkspace) continue;
    // fp32 must stay fp32: no TF32 tensor-op algorithm.
    if (k.t == DType::F32 && p.mathType != CUDNN_FMA_MATH) continue;
    found.push_back({p.algo, p.mathType, p.memory});
  }
  return plans.algos.emplace(k, found).first->second;
}

void drop_algo(CudaBackend& be, const ConvKey& k, cudnnConvolutionFwdAlgo_t algo) {
  ConvPlans& plans = be.conv_plans();
  std::lock_guard<std::mutex> lock(plans.mu);
  auto& v = plans.algos[k];
  v.erase(std::remove_if(v.begin(), v.end(), [&](const ConvAlgo& a) { return a.algo == algo; }),
          v.end());
}

// y = conv(x) (no bias) with symmetric padding. Returns CUDNN_STATUS_SUCCESS, or why the last
// algorithm tried failed (NOT_SUPPORTED when cuDNN offered none that we accept).
cudnnStatus_t cudnn_conv(CudaBackend& be, const ConvKey& k, const void* x, const void* w, void* y,
                         int64_t oh, int64_t ow) {
  ConvDescs d(k, oh, ow);
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  for (const ConvAlgo& a : find_algos(be, k, d)) {
    OVIS_CU(cudnnSetConvolutionMathType(d.conv, a.math));
    Tensor ws;
    if (a.workspace) ws = be.empty({int64_t(a.workspace)}, DType::U8);
    const float alpha = 1.0f, beta = 0.0f;
    last = cudnnConvolutionForward(be.state().dnn(), &alpha, d.x, x, d.w, w, d.conv, a.algo,
                                   ws.defined() ? ws.device_ptr() : nullptr, a.workspace, &beta,
                                   d.y, y);
    if (last == CUDNN_STATUS_SUCCESS) return last;
    // Offered by the heuristic but refused (or failed) when run: PyTorch likewise tries the
    // next one. (A sticky CUDA error fails every later call and surfaces at the next check.)
    cudaGetLastError();
    drop_algo(be, k, a.algo);
  }
  return last;
}

// Convolution of a whole input (symmetric padding) into y [O, oh, ow] of dtype t, in dtype t
// when cuDNN can, else through fp32 copies.
void conv_any(CudaBackend& be, const Tensor& x, const Tensor& w, int ph, int pw, int stride,
              Tensor& y) {
  const DType t = x.dtype();
  const ConvKey k{x.dim(0), x.dim(1), x.dim(2), w.dim(0), w.dim(2), w.dim(3), ph, pw, stride, t};
  cudnnStatus_t st =
      cudnn_conv(be, k, x.device_ptr(), w.device_ptr(), y.device_ptr(), y.dim(1), y.dim(2));
  if (st == CUDNN_STATUS_SUCCESS) return;
  if (t != DType::F32) {
    const Tensor xf = be.as_dtype(x, DType::F32), wf = be.as_dtype(w, DType::F32);
    Tensor yf = be.empty(y.shape(), DType::F32);
    ConvKey kf = k;
    kf.t = DType::F32;
    st = cudnn_conv(be, kf, xf.device_ptr(), wf.device_ptr(), yf.device_ptr(), y.dim(1), y.dim(2));
    if (st == CUDNN_STATUS_SUCCESS) {
      Context c{&be, Precision::F32};
      be.copy_(c, y, yf);
      return;
    }
  }
  fail("cuDNN ran no fp32 algorithm for a convolution of ", shape_str(x.shape()), " by ",
       shape_str(w.shape()), ": ", cudnnGetErrorString(st));
}

}  // namespace

Tensor CudaBackend::conv2d(const Context& c, const Tensor& x_in, const ConvWeights& cw,
                           const Conv2dParams& p, const ConvPrologue& pro) {
  const DType t = c.act_dtype();
  const PreparedCuda* prep = prepared_of(cw.prepared);
  const Tensor w =
      t == DType::BF16 && prep && prep->w_bf16.defined() ? prep->w_bf16 : as_dtype(cw.w, t);
  const float* bias = cw.b.defined() ? static_cast<const float*>(cw.b.device_ptr()) : nullptr;
  const int64_t C = x_in.dim(0), H = x_in.dim(1), W = x_in.dim(2);
  const int64_t O = w.dim(0), KH = w.dim(2), KW = w.dim(3);
  const int64_t halo = KH / 2;
  const bool same = p.stride == 1 && KH == KW && KH % 2 == 1 && p.pad_top == halo &&
                    p.pad_bottom == halo && p.pad_left == halo && p.pad_right == halo;

  if (!same) {
    const Tensor x = as_dtype(x_in, t);
    const int64_t OH = (H + p.pad_top + p.pad_bottom - KH) / p.stride + 1;
    const int64_t OW = (W + p.pad_left + p.pad_right - KW) / p.stride + 1;
    Tensor y = empty({O, OH, OW}, t);
    if (p.pad_top == p.pad_bottom && p.pad_left == p.pad_right) {
      conv_any(*this, x, w, p.pad_top, p.pad_left, p.stride, y);
    } else {
      const int64_t Hp = H + p.pad_top + p.pad_bottom, Wp = W + p.pad_left + p.pad_right;
      Tensor xp = empty({C, Hp, Wp}, t);
      pad_kernel<<<blocks_for(C * Hp * Wp), kThreads, 0, stream()>>>(
          elems(x), C, H, W, p.pad_top, p.pad_left, Hp, Wp, mut_elems(xp));
      OVIS_CU_LAUNCHED("conv2d padding");
      conv_any(*this, xp, w, 0, 0, p.stride, y);
    }
    if (bias && y.numel()) {
      bias_kernel<<<blocks_for(y.numel()), kThreads, 0, stream()>>>(mut_elems(y), O, OH * OW, bias);
      OVIS_CU_LAUNCHED("conv2d bias");
    }
    return y;
  }

  const bool up = pro.kind == ConvPrologue::Kind::Upsample2x;
  const int64_t Hp = up ? 2 * H : H, Wp = up ? 2 * W : W;
  Tensor y = empty({O, Hp, Wp}, t);
  if (y.numel() == 0) return y;
  const size_t es = dtype_size(t);
  const int64_t rows =
      std::clamp<int64_t>(int64_t(band_bytes_ / std::max<size_t>(size_t(C * Wp) * es, 1)), 1, Hp);
  if (pro.kind == ConvPrologue::Kind::None && rows >= Hp) {
    // Whole image, no prologue: one convolution with cuDNN's own padding.
    const Tensor x = as_dtype(x_in, t);
    conv_any(*this, x, w, int(halo), int(halo), 1, y);
    if (bias) {
      bias_kernel<<<blocks_for(y.numel()), kThreads, 0, stream()>>>(mut_elems(y), O, Hp * Wp, bias);
      OVIS_CU_LAUNCHED("conv2d bias");
    }
    return y;
  }
  BandSource src{elems(x_in), C, H, W, 0, nullptr, Elems{}, Elems{}, 1};
  if (pro.kind == ConvPrologue::Kind::GroupNormSilu) {
    src.kind = 1;
    src.stats = static_cast<const float*>(pro.stats->device_ptr());
    src.nw = elems(*pro.norm_w);
    src.nb = elems(*pro.norm_b);
    src.cpg = C / pro.stats->dim(0);
  } else if (up) {
    src.kind = 2;
  }
  Tensor band = empty({C * (rows + 2 * halo) * Wp}, t);
  Tensor out = empty({O * rows * Wp}, t);
  for (int64_t r0 = 0; r0 < Hp; r0 += rows) {
    const int64_t n = std::min(rows, Hp - r0), bh = n + 2 * halo;
    Tensor band_v = Tensor::view(band.buffer(), band.offset(), {C, bh, Wp}, t);
    Tensor out_v = Tensor::view(out.buffer(), out.offset(), {O, n, Wp}, t);
    band_kernel<<<blocks_for(C * bh * Wp), kThreads, 0, stream()>>>(src, r0 - halo, bh, Hp, Wp,
                                                                    mut_elems(band_v));
    OVIS_CU_LAUNCHED("conv2d band");
    conv_any(*this, band_v, w, 0, int(halo), 1, out_v);
    band_store_kernel<<<blocks_for(O * n * Wp), kThreads, 0, stream()>>>(elems(out_v), O, n, Wp, Hp,
                                                                         r0, bias, mut_elems(y));
    OVIS_CU_LAUNCHED("conv2d band store");
  }
  return y;
}

}  // namespace ovis::ops::cuda
