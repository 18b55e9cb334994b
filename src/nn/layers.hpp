// The layer types every model is built from, bound by name through WeightBinder and prepared by
// the context's backend once (uploads, f32 copies of norm weights and biases, reordered conv
// weights). Calling a layer runs its op on the given context.
#pragma once
#include <string>

#include "io/weight_binder.hpp"
#include "ops/ops.hpp"

namespace ovis::nn {

// nn.Linear: `prefix.weight` [out, in] (stored dtype, may be block-quantized) and, with bias,
// `prefix.bias` [out].
struct Linear {
  ops::LinearWeights w;
  static Linear bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                     int64_t out, int64_t in, bool bias = true);
  // From tensors already fetched (e.g. a 1x1 conv weight reshaped to [out, in]).
  static Linear from(const ops::Context& c, const Tensor& w, const Tensor* b);
  Tensor operator()(const ops::Context& c, const Tensor& x) const { return ops::linear(c, x, w); }
};

// RMSNorm with an optional learned scale: the tensor `name` [n] (or none).
struct RmsNorm {
  Tensor w;  // f32 on the device, undefined = no scale
  float eps = 1e-6f;
  static RmsNorm bind(WeightBinder& wb, const ops::Context& c, const std::string& name, int64_t n,
                      float eps);
  Tensor operator()(const ops::Context& c, const Tensor& x) const {
    return ops::rms_norm(c, x, w.defined() ? &w : nullptr, eps);
  }
};

// LayerNorm: affine (`prefix.weight`, `prefix.bias`) or plain.
struct LayerNorm {
  Tensor w, b;
  float eps = 1e-5f;
  static LayerNorm bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                        int64_t n, float eps);
  static LayerNorm plain(float eps) { return LayerNorm{Tensor(), Tensor(), eps}; }
  Tensor operator()(const ops::Context& c, const Tensor& x) const {
    return ops::layer_norm(c, x, w.defined() ? &w : nullptr, b.defined() ? &b : nullptr, eps);
  }
};

// GroupNorm over [C, H, W]: `prefix.weight`, `prefix.bias` [C].
struct GroupNorm {
  Tensor w, b;
  int groups = 1;
  float eps = 1e-6f;
  static GroupNorm bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                        int64_t channels, int groups, float eps);
  Tensor operator()(const ops::Context& c, const Tensor& x) const {
    return ops::group_norm(c, x, groups, w, b, eps);
  }
};

// nn.Conv2d: `prefix.weight` [out, in, k, k], `prefix.bias` [out].
struct Conv2d {
  ops::ConvWeights w;
  static Conv2d bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                     int64_t out, int64_t in, int64_t k);
  int64_t kernel() const { return w.w.dim(2); }
  // stride 1, 'same' padding (k/2), with an optional fused prologue.
  Tensor operator()(const ops::Context& c, const Tensor& x,
                    const ops::ConvPrologue& pro = {}) const;
  Tensor operator()(const ops::Context& c, const Tensor& x, const ops::Conv2dParams& p) const {
    return ops::conv2d(c, x, w, p);
  }
};

// A small weight vector or tensor as f32 on the device (e.g. a CLS token).
Tensor bind_f32(WeightBinder& wb, const ops::Context& c, const std::string& name,
                const Shape& shape);
// A table kept in its stored dtype on the device (embeddings, vte; may be block-quantized).
Tensor bind_stored(WeightBinder& wb, const ops::Context& c, const std::string& name,
                   const Shape& shape);

}  // namespace ovis::nn
