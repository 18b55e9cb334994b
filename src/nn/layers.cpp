#include "nn/layers.hpp"

namespace ovis::nn {

Linear Linear::bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix, int64_t out,
                    int64_t in, bool bias) {
  const Tensor w = wb.get_matrix(prefix + ".weight", {out, in});
  if (!bias) return Linear{ops::prepare_linear(c, w, nullptr, /*sole_user=*/true)};
  const Tensor b = wb.get(prefix + ".bias", {out});
  return Linear{ops::prepare_linear(c, w, &b, /*sole_user=*/true)};
}

Linear Linear::from(const ops::Context& c, const Tensor& w, const Tensor* b) {
  return Linear{ops::prepare_linear(c, w, b)};
}

RmsNorm RmsNorm::bind(WeightBinder& wb, const ops::Context& c, const std::string& name, int64_t n,
                      float eps) {
  return RmsNorm{ops::prepare_f32(c, wb.get(name, {n})), eps};
}

LayerNorm LayerNorm::bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                          int64_t n, float eps) {
  return LayerNorm{ops::prepare_f32(c, wb.get(prefix + ".weight", {n})),
                   ops::prepare_f32(c, wb.get(prefix + ".bias", {n})), eps};
}

GroupNorm GroupNorm::bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                          int64_t channels, int groups, float eps) {
  return GroupNorm{ops::prepare_f32(c, wb.get(prefix + ".weight", {channels})),
                   ops::prepare_f32(c, wb.get(prefix + ".bias", {channels})), groups, eps};
}

Conv2d Conv2d::bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix, int64_t out,
                    int64_t in, int64_t k) {
  const Tensor w = wb.get(prefix + ".weight", {out, in, k, k});
  const Tensor b = wb.get(prefix + ".bias", {out});
  return Conv2d{ops::prepare_conv(c, w, &b)};
}

Tensor Conv2d::operator()(const ops::Context& c, const Tensor& x,
                          const ops::ConvPrologue& pro) const {
  ops::Conv2dParams p;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = int(kernel() / 2);
  return ops::conv2d(c, x, w, p, pro);
}

Tensor bind_f32(WeightBinder& wb, const ops::Context& c, const std::string& name,
                const Shape& shape) {
  return ops::prepare_f32(c, wb.get(name, shape));
}

Tensor bind_stored(WeightBinder& wb, const ops::Context& c, const std::string& name,
                   const Shape& shape) {
  return ops::prepare_stored(c, wb.get_matrix(name, shape));
}

}  // namespace ovis::nn
