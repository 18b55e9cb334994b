#include "pipeline/multimodal.hpp"

#include <cstring>

#include "core/error.hpp"
#include "text/placeholder_ids.hpp"

namespace ovis {

Tensor merge_multimodal(const std::vector<int32_t>& ids, const std::vector<Tensor>& visual,
                        const Qwen3& llm, const VisualTokenizer& vt, int64_t max_length) {
  // spec §5.1: placeholders embed as token 0 and are overwritten below.
  std::vector<int64_t> text_ids(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) text_ids[i] = ids[i] < 0 ? 0 : ids[i];
  Tensor text = llm.embed(text_ids);
  const int64_t D = text.dim(1);
  const int64_t V = vt.visual_vocab();

  int64_t total = 0;
  size_t atoms = 0;
  for (int32_t id : ids) {
    if (id == kImageAtomId) {
      if (atoms >= visual.size())
        fail("prompt has more <image> markers than images (", visual.size(), ")");
      total += visual[atoms++].dim(0);
    } else {
      ++total;
    }
  }
  if (atoms != visual.size())
    fail("prompt has ", atoms, " <image> markers but ", visual.size(), " images were given");

  Tensor merged = Tensor::empty({total, D});
  float* out = merged.f32();
  size_t image = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id == kImageAtomId) {
      const Tensor& v = visual[image++];
      OVIS_ASSERT(v.dim(1) == D);
      std::memcpy(out, v.f32(), v.nbytes());
      out += v.numel();
      continue;
    }
    if (id <= kImageStartId && id >= kImageStartId - 3) {
      // spec §5.2: indicator k (-301 - k) reads vte row V-5+k (the reference's off-by-one).
      Tensor row = vt.vte_row(V - 5 + (kImageStartId - id));
      std::memcpy(out, row.f32(), size_t(D) * 4);
    } else if (id < 0) {
      fail("internal error: unexpected placeholder id ", id);
    } else {
      std::memcpy(out, text.f32() + int64_t(i) * D, size_t(D) * 4);
    }
    out += D;
  }
  if (total > max_length) merged = merged.slice_rows(total - max_length, total).clone();
  return merged;
}

}  // namespace ovis
