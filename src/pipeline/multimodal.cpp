#include "pipeline/multimodal.hpp"

#include "core/error.hpp"
#include "ops/ops.hpp"
#include "text/placeholder_ids.hpp"

namespace ovis {

Tensor merge_multimodal(const std::vector<int32_t>& ids, const std::vector<Tensor>& visual,
                        const Qwen3& llm, const VisualTokenizer& vt, int64_t max_length) {
  const ops::Context& c = llm.context();
  // spec §5.1: placeholders embed as token 0 and are replaced below.
  std::vector<int64_t> text_ids(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) text_ids[i] = ids[i] < 0 ? 0 : ids[i];
  const Tensor text = llm.embed(text_ids);
  const int64_t V = vt.visual_vocab();

  size_t atoms = 0;
  for (int32_t id : ids) atoms += id == kImageAtomId;
  if (atoms != visual.size())
    fail("prompt has ", atoms, " <image> markers but ", visual.size(), " images were given");

  // The merged sequence as consecutive pieces: runs of text rows, indicator rows, images.
  std::vector<Tensor> pieces;
  size_t image = 0, run = 0;
  auto flush_text = [&](size_t end) {
    if (end > run) pieces.push_back(text.slice_rows(int64_t(run), int64_t(end)));
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id >= 0) continue;
    flush_text(i);
    run = i + 1;
    if (id == kImageAtomId) {
      OVIS_ASSERT(visual[image].dim(1) == text.dim(1));
      pieces.push_back(visual[image++]);
    } else if (id <= kImageStartId && id >= kImageStartId - 3) {
      // spec §5.2: indicator k (-301 - k) reads vte row V-5+k (the reference's off-by-one).
      pieces.push_back(vt.vte_row(V - 5 + (kImageStartId - id)));
    } else {
      fail("internal error: unexpected placeholder id ", id);
    }
  }
  flush_text(ids.size());
  Tensor merged = ops::concat_rows(c, pieces);
  const int64_t total = merged.dim(0);
  if (total > max_length) merged = merged.slice_rows(total - max_length, total).clone();
  return merged;
}

}  // namespace ovis
