// Intermediate tensors of one visual-tokenizer forward, captured for golden tests and debugging.
#pragma once
#include <vector>

#include "core/tensor.hpp"

namespace ovis {

struct VisionTrace {
  Tensor patch_embed_plus_pos;    // [N_patch, vit_hidden], merge order (spec §4.3)
  std::vector<Tensor> layer_out;  // per block, [N_patch, vit_hidden] (before post_trunk_norm)
  Tensor head_logits;             // [N_patch / 4, V - 4] after the head LayerNorm (spec §4.5)
  Tensor probs;                   // softmax(head_logits), unpadded
};

}  // namespace ovis
