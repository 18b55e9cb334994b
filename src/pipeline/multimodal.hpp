// The multimodal merge of spec §5: text embeddings with the image indicator rows of vte and each
// image's visual embeddings spliced in at its atom placeholder.
#pragma once
#include <vector>

#include "core/tensor.hpp"
#include "llm/qwen3.hpp"
#include "vision/visual_tokenizer.hpp"

namespace ovis {

// ids: expanded prompt ids (spec §3.3) where -301..-304 are indicators and -300 the atoms, one per
// image in order; visual[i] is image i's [N_i, hidden] embedding. Keeps the last max_length rows.
Tensor merge_multimodal(const std::vector<int32_t>& ids, const std::vector<Tensor>& visual,
                        const Qwen3& llm, const VisualTokenizer& vt, int64_t max_length);

}  // namespace ovis
