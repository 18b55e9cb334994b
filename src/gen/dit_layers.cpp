#include "gen/dit_layers.hpp"

#include "core/error.hpp"

namespace ovis::gen {

namespace {
constexpr float kQkNormEps = 1e-6f;  // §9.2
}

MlpEmbedder MlpEmbedder::bind(WeightBinder& wb, const ops::Context& c, const std::string& in_name,
                              const std::string& out_name, int64_t in_dim, int64_t hidden) {
  return {nn::Linear::bind(wb, c, in_name, hidden, in_dim),
          nn::Linear::bind(wb, c, out_name, hidden, hidden)};
}

Tensor MlpEmbedder::operator()(const ops::Context& c, const Tensor& x) const {
  Tensor h = in(c, x);
  ops::silu_(c, h);
  return out(c, h);
}

QkNorm QkNorm::bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                    int64_t head_dim) {
  return {nn::RmsNorm::bind(wb, c, prefix + ".query_norm.scale", head_dim, kQkNormEps),
          nn::RmsNorm::bind(wb, c, prefix + ".key_norm.scale", head_dim, kQkNormEps)};
}

Qkv split_qkv(const ops::Context& c, const Tensor& packed, int64_t col0, int heads,
              int64_t head_dim, const QkNorm* norm, const ops::RopeTable* rope) {
  const int64_t T = packed.dim(0), width = heads * head_dim;
  Qkv r{ops::slice_cols(c, packed, col0, col0 + width),
        ops::slice_cols(c, packed, col0 + width, col0 + 2 * width),
        ops::slice_cols(c, packed, col0 + 2 * width, col0 + 3 * width)};
  if (norm) {
    r.q = norm->q(c, r.q.reshape({T * heads, head_dim})).reshape({T, width});
    r.k = norm->k(c, r.k.reshape({T * heads, head_dim})).reshape({T, width});
  }
  if (rope) {
    OVIS_ASSERT(rope->rows() == T);
    ops::rope_(c, r.q, heads, *rope, ops::RopeLayout::Interleaved);
    ops::rope_(c, r.k, heads, *rope, ops::RopeLayout::Interleaved);
  }
  return r;
}

}  // namespace ovis::gen
