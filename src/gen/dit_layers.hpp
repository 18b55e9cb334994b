// Building blocks shared by the token refiner and the Yak DiT: bound Linear layers, the QK
// RMSNorm and the split of a packed qkv projection into per-head q, k, v.
#pragma once
#include <string>

#include "core/tensor.hpp"
#include "gen/rope_nd.hpp"
#include "io/weight_binder.hpp"

namespace ovis::gen {

// nn.Linear: weight [out, in] as stored (a view into the checkpoint), bias [out] upcast to f32
// once at load.
struct Linear {
  Tensor w, b;
  static Linear bind(WeightBinder& wb, const std::string& name, int64_t out, int64_t in);
  Tensor operator()(const Tensor& x) const;
};

// Small weight vector (norm weight/bias/scale) bound and upcast to f32 once at load.
Tensor bind_vector(WeightBinder& wb, const std::string& name, int64_t n);

// FLUX MLPEmbedder / HunyuanVideo TextProjection: out(SiLU(in(x))).
struct MlpEmbedder {
  Linear in, out;
  static MlpEmbedder bind(WeightBinder& wb, const std::string& in_name, const std::string& out_name,
                          int64_t in_dim, int64_t hidden);
  Tensor operator()(const Tensor& x) const;
};

// QKNorm: RMSNorm over head_dim (eps 1e-6) with learnable `scale`, for q and k (§7.9, §9.2).
struct QkNorm {
  Tensor q_scale, k_scale;
  static QkNorm bind(WeightBinder& wb, const std::string& prefix, int64_t head_dim);
};

struct Qkv {
  Tensor q, k, v;  // [T, heads·head_dim] each
};

// Splits columns [col0, col0 + 3·heads·head_dim) of `packed` [T, *] laid out [3][heads][head_dim]
// ("B L (K H D)"). With `norm`, q and k are RMS-normalised per head; with `rope`, q and k are
// rotated by the (interleaved) table, whose rows must match T.
Qkv split_qkv(const Tensor& packed, int64_t col0, int heads, int64_t head_dim, const QkNorm* norm,
              const RopeTable* rope);

}  // namespace ovis::gen
