#include "gen/dit_layers.hpp"

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis::gen {

namespace {
constexpr float kQkNormEps = 1e-6f;  // §9.2
}

Linear Linear::bind(WeightBinder& wb, const std::string& name, int64_t out, int64_t in) {
  Linear l;
  l.w = wb.get(name + ".weight", {out, in});
  l.b = ops::weight_f32(wb.get(name + ".bias", {out}));
  return l;
}

Tensor Linear::operator()(const Tensor& x) const {
  return ops::linear(x, w, &b);
}

Tensor bind_vector(WeightBinder& wb, const std::string& name, int64_t n) {
  return ops::weight_f32(wb.get(name, {n}));
}

MlpEmbedder MlpEmbedder::bind(WeightBinder& wb, const std::string& in_name,
                              const std::string& out_name, int64_t in_dim, int64_t hidden) {
  return {Linear::bind(wb, in_name, hidden, in_dim), Linear::bind(wb, out_name, hidden, hidden)};
}

Tensor MlpEmbedder::operator()(const Tensor& x) const {
  Tensor h = in(x);
  ops::silu_(h);
  return out(h);
}

QkNorm QkNorm::bind(WeightBinder& wb, const std::string& prefix, int64_t head_dim) {
  return {bind_vector(wb, prefix + ".query_norm.scale", head_dim),
          bind_vector(wb, prefix + ".key_norm.scale", head_dim)};
}

Qkv split_qkv(const Tensor& packed, int64_t col0, int heads, int64_t head_dim, const QkNorm* norm,
              const RopeTable* rope) {
  const int64_t T = packed.dim(0), width = heads * head_dim;
  Qkv r{ops::cols(packed, col0, col0 + width), ops::cols(packed, col0 + width, col0 + 2 * width),
        ops::cols(packed, col0 + 2 * width, col0 + 3 * width)};
  if (norm) {
    r.q = ops::rms_norm(r.q.reshape({T * heads, head_dim}), &norm->q_scale, kQkNormEps)
              .reshape({T, width});
    r.k = ops::rms_norm(r.k.reshape({T * heads, head_dim}), &norm->k_scale, kQkNormEps)
              .reshape({T, width});
  }
  if (rope) {
    OVIS_ASSERT(rope->rows() == T);
    ops::rope_(r.q, heads, rope->cos, rope->sin, ops::RopeLayout::Interleaved);
    ops::rope_(r.k, heads, rope->cos, rope->sin, ops::RopeLayout::Interleaved);
  }
  return r;
}

}  // namespace ovis::gen
