// The AIMv2 NaViT backbone of the visual tokenizer (spec §4.3-4.4): patch embedding + RMSNorm,
// bicubic-interpolated learned position embedding, then pre-norm blocks with 2D RoPE and full
// non-causal attention over one image's patches. Everything runs in the 2x2-merge patch order.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "nn/layers.hpp"
#include "ops/ops.hpp"
#include "vision/vision_trace.hpp"

namespace ovis {

class AimV2 {
 public:
  // Binds `<prefix>preprocessor.*` and `<prefix>trunk.blocks.*` (prefix e.g.
  // "visual_tokenizer.backbone."); `trunk.post_trunk_norm` is marked as known but unused (§4.4).
  static AimV2 load(WeightBinder& wb, const ops::Context& ctx, const VisionConfig& cfg,
                    const std::string& prefix);

  // pixel rows [M, C*p*p] -> RMSNorm(conv(x)) [M, hidden]; rows are independent (§4.3).
  Tensor patch_embed(const Tensor& pixel_values) const;
  // The position embedding resized to grid_h x grid_w, in merge order: [grid_h*grid_w, hidden].
  Tensor pos_embed(int grid_h, int grid_w) const;
  // RoPE tables of the merge-ordered grid: cos and sin [grid_h*grid_w, head_dim/2] (§4.4).
  ops::RopeTable rope_tables(int grid_h, int grid_w) const;
  // The blocks on x [grid_h*grid_w, hidden] (not modified); returns the last block's output,
  // i.e. hidden_states[-1], before post_trunk_norm. layer_out (if non-null) gets every block's.
  Tensor trunk(const Tensor& x, int grid_h, int grid_w,
               std::vector<Tensor>* layer_out = nullptr) const;
  // patch_embed + pos_embed + trunk for one image.
  Tensor forward(const Tensor& pixel_values, int grid_h, int grid_w,
                 VisionTrace* trace = nullptr) const;

  const VisionConfig& config() const { return cfg_; }

 private:
  struct Block {
    nn::RmsNorm norm_1, norm_2;
    nn::Linear qkv, proj, fc1, fc2, fc3;
  };
  ops::Context ctx_;
  VisionConfig cfg_;
  nn::Linear patch_;  // the Conv2d patchifier viewed as a Linear [hidden, C*p*p]
  nn::RmsNorm patch_norm_;
  Tensor pos_embed_host_;  // [1, side*side, hidden], host view: resized per grid (input prep)
  ops::RopeFreqs rope_;
  std::vector<Block> blocks_;
};

}  // namespace ovis
