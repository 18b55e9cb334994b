// The bidirectional text-token refiner in front of the DiT (spec §7.7, `SingleTokenRefiner` with
// a CLS token): turns the LLM condition into the DiT text stream and the pooled vector `y`.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "gen/dit_layers.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "nn/layers.hpp"
#include "ops/ops.hpp"

namespace ovis {

struct TokenRefinerOutput {
  Tensor txt_fea;  // [L, hidden]: refined text tokens (CLS removed)
  Tensor cls_y;    // [1, hidden]: refined CLS token (input of vector_in)
};

class TokenRefiner {
 public:
  // prefix e.g. "visual_generator.backbone.txt_in."
  static TokenRefiner load(WeightBinder& wb, const ops::Context& ctx, const std::string& prefix,
                           const DitConfig& cfg);
  // txt [L, context_in_dim]; no mask (every token attends to every token, CLS included).
  TokenRefinerOutput forward(const Tensor& txt) const;

 private:
  struct Block {
    nn::LayerNorm norm1, norm2;
    nn::Linear qkv, proj, fc1, fc2, ada;  // ada: SiLU(c) -> (gate_msa, gate_mlp)
  };
  ops::Context ctx_;
  int hidden_ = 0, heads_ = 0, head_dim_ = 0;
  nn::Linear input_embedder_;
  gen::MlpEmbedder c_embedder_;  // TextProjection: linear_1, SiLU, linear_2
  Tensor cls_token_;             // [1, hidden] f32
  std::vector<Block> blocks_;
};

}  // namespace ovis
