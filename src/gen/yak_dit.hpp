// The Yak MMDiT denoiser (spec §7.6–7.10, weights §8.3): token refiner, time/vector embedders,
// DoubleStreamXBlocks (joint text+image attention plus an image-only self-attention),
// SingleStreamBlocks over [txt; img], and the final adaLN layer. Predicts the flow velocity.
#pragma once
#include <vector>

#include "core/tensor.hpp"
#include "gen/dit_layers.hpp"
#include "gen/token_refiner.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "nn/layers.hpp"
#include "ops/ops.hpp"

namespace ovis {

// Intermediate values of one forward, named after the fixture's dit_* goldens (tests/debugging).
struct DitTrace {
  Tensor time_in_out;    // [1, hidden]
  Tensor txt_fea;        // [L, hidden]  refiner output tokens
  Tensor cls_y;          // [1, hidden]  refiner CLS output
  Tensor vector_in_out;  // [1, hidden]
  Tensor vec;            // [1, hidden]  time_in_out + vector_in_out
  ops::RopeTable pe;     // cos/sin [L + N', head_dim/2], order [txt; img(; cond)]
  std::vector<Tensor> double_img, double_txt;  // per double block: [N', hidden], [L, hidden]
  std::vector<Tensor> single_out;              // per single block: [L + N', hidden]
  Tensor final_layer_out;                      // [N', out_channels] (cond tokens included)
};

// The text side of a DiT call that depends only on the condition (not on t or the image): the
// refined tokens and vector_in(CLS). The samplers compute it once per condition, not per step.
struct DitText {
  Tensor txt_fea;        // [L, hidden]
  Tensor vector_in_out;  // [1, hidden]
};

class YakDiT {
 public:
  // Binds every tensor under "visual_generator.backbone." with its shape from cfg.
  static YakDiT load(WeightBinder& wb, const ops::Context& ctx, const DitConfig& cfg);

  // img [N, in_channels] packed latents, img_ids [N, 3]; txt [L, context_in_dim] (LLM
  // condition); t in [0, 1]. For editing, cond_img [N2, in_channels] and cond_ids [N2, 3] are
  // appended to the image tokens. Returns the velocity [N, out_channels].
  Tensor forward(const Tensor& img, const Tensor& img_ids, const Tensor& txt, float t,
                 const Tensor* cond_img = nullptr, const Tensor* cond_ids = nullptr,
                 DitTrace* trace = nullptr) const;

  // The same split in two: prepare_text(txt) once per condition (refiner + vector_in), then
  // forward with it at every step. Records txt_fea, cls_y and vector_in_out into `trace`.
  DitText prepare_text(const Tensor& txt, DitTrace* trace = nullptr) const;
  Tensor forward(const Tensor& img, const Tensor& img_ids, const DitText& text, float t,
                 const Tensor* cond_img = nullptr, const Tensor* cond_ids = nullptr,
                 DitTrace* trace = nullptr) const;

  const DitConfig& config() const { return cfg_; }
  const ops::Context& context() const { return ctx_; }

 private:
  struct Attn {
    nn::Linear qkv, proj;
    gen::QkNorm norm;
  };
  struct Mlp {
    nn::Linear fc1, fc2;  // Linear, GELU(tanh), Linear
  };
  struct DoubleBlock {
    nn::Linear img_mod, txt_mod;  // 9·hidden (TriModulation), 6·hidden
    Attn img_attn, img_self_attn, txt_attn;
    Mlp img_mlp, txt_mlp;
  };
  struct SingleBlock {
    nn::Linear mod, linear1, linear2;
    gen::QkNorm norm;
  };
  // Per-forward modulation vectors (each a [1, k·hidden] row), computed once from SiLU(vec).
  struct Modulations {
    std::vector<Tensor> img, txt, single;
    Tensor final;
  };

  Modulations modulations(const Tensor& vec) const;
  void double_block(const DoubleBlock& b, const Tensor& img_mod, const Tensor& txt_mod, Tensor& img,
                    Tensor& txt, const ops::RopeTable& pe_txt, const ops::RopeTable& pe_img) const;
  void single_block(const SingleBlock& b, const Tensor& mod, Tensor& x,
                    const ops::RopeTable& pe) const;
  Tensor mlp(const Mlp& m, const Tensor& x) const;

  ops::Context ctx_;
  DitConfig cfg_;
  int64_t hidden_ = 0, head_dim_ = 0, mlp_hidden_ = 0;
  int heads_ = 0;
  nn::Linear img_in_;
  gen::MlpEmbedder time_in_, vector_in_;
  TokenRefiner txt_in_;
  std::vector<DoubleBlock> double_blocks_;
  std::vector<SingleBlock> single_blocks_;
  nn::Linear final_ada_, final_linear_;
  nn::LayerNorm norm_;   // the blocks' non-affine LayerNorm (eps 1e-6, §9.2)
  ops::RopeFreqs rope_;  // §7.8
};

}  // namespace ovis
