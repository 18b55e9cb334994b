// The understanding-side visual tokenizer (spec §4.5): AIMv2 features of each 2x2 merge cell are
// concatenated, mapped by the head (Linear, no bias, + affine LayerNorm) to V-4 logits, turned
// into probabilities with a float32 softmax, and embedded as the probability-weighted mixture of
// the first V-4 rows of `vte` (the 4 zero-padded columns of the reference are never formed).
#pragma once
#include <cstdint>

#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "vision/aimv2.hpp"
#include "vision/vision_trace.hpp"

namespace ovis {

class VisualTokenizer {
 public:
  // Binds visual_tokenizer.* and vte.weight (all shapes from cfg.visual_tokenizer and
  // cfg.hidden_size).
  static VisualTokenizer load(WeightBinder& wb, const ops::Context& ctx, const ModelConfig& cfg);

  // pixel_values [grid_h*grid_w, 3*p*p] in the 2x2-merge order (spec §4.2), grid in patches
  // (multiples of the merge stride). Returns the visual embeddings [grid_h*grid_w/4, llm_hidden].
  Tensor encode(const Tensor& pixel_values, int grid_h, int grid_w,
                VisionTrace* trace = nullptr) const;
  // vte row r as [1, hidden] activations (indicator embeddings, spec §5: rows V-5..V-1).
  Tensor vte_row(int64_t r) const;
  int64_t visual_vocab() const { return vocab_; }

  // The stages of encode(), for tests and tools.
  const AimV2& backbone() const { return backbone_; }
  // Backbone features [N_patch, vit_hidden] (merge order) -> head logits [N_patch/4, V-4].
  Tensor head_logits(const Tensor& features) const;
  // Probabilities [M, V-4] -> embeddings [M, llm_hidden] (= padded probs @ vte).
  Tensor embed_probs(const Tensor& probs) const;

 private:
  ops::Context ctx_;
  AimV2 backbone_;
  int64_t vocab_ = 0;
  int merge_ = 4;          // hidden_stride^2 patches per visual token
  nn::Linear head_;        // [V-4, merge * vit_hidden], no bias
  nn::LayerNorm head_ln_;  // [V-4]
  Tensor vte_;             // [V, llm_hidden], stored dtype
};

}  // namespace ovis
