// Building blocks shared by the token refiner and the Yak DiT: the MLP embedder, the QK
// RMSNorm, the split of a packed qkv projection into per-head q, k, v, and chunk views of
// modulation rows.
#pragma once
#include <string>

#include "core/tensor.hpp"
#include "io/weight_binder.hpp"
#include "nn/layers.hpp"
#include "ops/ops.hpp"

namespace ovis::gen {

// FLUX MLPEmbedder / HunyuanVideo TextProjection: out(SiLU(in(x))).
struct MlpEmbedder {
  nn::Linear in, out;
  static MlpEmbedder bind(WeightBinder& wb, const ops::Context& c, const std::string& in_name,
                          const std::string& out_name, int64_t in_dim, int64_t hidden);
  Tensor operator()(const ops::Context& c, const Tensor& x) const;
};

// QKNorm: RMSNorm over head_dim (eps 1e-6) with learnable `scale`, for q and k (§7.9, §9.2).
struct QkNorm {
  nn::RmsNorm q, k;
  static QkNorm bind(WeightBinder& wb, const ops::Context& c, const std::string& prefix,
                     int64_t head_dim);
};

struct Qkv {
  Tensor q, k, v;  // [T, heads·head_dim] each
};

// Splits columns [col0, col0 + 3·heads·head_dim) of `packed` [T, *] laid out [3][heads][head_dim]
// ("B L (K H D)"). With `norm`, q and k are RMS-normalised per head; with `rope`, q and k are
// rotated by the (interleaved) table, whose rows must match T.
Qkv split_qkv(const ops::Context& c, const Tensor& packed, int64_t col0, int heads,
              int64_t head_dim, const QkNorm* norm, const ops::RopeTable* rope);

// Chunk i of a modulation row [1, n·width] as a [width] view (no copy).
inline Tensor chunk(const Tensor& row, int64_t i, int64_t width) {
  return row.reshape({row.numel()}).slice_rows(i * width, (i + 1) * width);
}

}  // namespace ovis::gen
