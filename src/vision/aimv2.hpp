// The AIMv2 NaViT backbone of the visual tokenizer (spec §4.3-4.4): patch embedding + RMSNorm,
// bicubic-interpolated learned position embedding, then pre-norm blocks with 2D RoPE and full
// non-causal attention over one image's patches. Everything runs in the 2x2-merge patch order.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "vision/vision_trace.hpp"

namespace ovis {

class AimV2 {
 public:
  // Binds `<prefix>preprocessor.*` and `<prefix>trunk.blocks.*` (prefix e.g.
  // "visual_tokenizer.backbone."); `trunk.post_trunk_norm` is marked as known but unused (§4.4).
  static AimV2 load(WeightBinder& wb, const VisionConfig& cfg, const std::string& prefix);

  // pixel rows [M, C*p*p] -> RMSNorm(conv(x)) [M, hidden]; rows are independent (§4.3).
  Tensor patch_embed(const Tensor& pixel_values) const;
  // The position embedding resized to grid_h x grid_w, in merge order: [grid_h*grid_w, hidden].
  Tensor pos_embed(int grid_h, int grid_w) const;
  // RoPE tables of the merge-ordered grid: cos and sin [grid_h*grid_w, head_dim/2] (§4.4).
  void rope_tables(int grid_h, int grid_w, Tensor* cos, Tensor* sin) const;
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
    Tensor norm_1, qkv_w, qkv_b, proj_w, proj_b;
    Tensor norm_2, fc1_w, fc1_b, fc2_w, fc2_b, fc3_w, fc3_b;
  };
  VisionConfig cfg_;
  Tensor patch_w_;     // [hidden, C*p*p] (the Conv2d weight viewed as a Linear)
  Tensor patch_b_;     // [hidden]
  Tensor patch_norm_;  // [hidden]
  Tensor pos_embed_;   // [1, side*side, hidden]
  std::vector<Block> blocks_;
};

}  // namespace ovis
