#include "pipeline/condition.hpp"

#include "pipeline/multimodal.hpp"
#include "text/conversation.hpp"
#include "vision/condition_image.hpp"

namespace ovis {

Tensor build_condition(const Components& c, const std::string& query, const Image& image, int W,
                       int H, Image* llm_image) {
  ConditionImage ci = process_image_aspectratio(image, W, H);
  Image shrunk = preshrink_for_llm(ci.cropped, c.cfg.preprocessor);
  FormattedPrompt fp = format_condition_prompt(c.tok, query);
  Tensor embeds = merge_multimodal(fp.input_ids, {c.encode_image(shrunk)}, c.llm, c.vt,
                                   c.cfg.multimodal_max_length);
  if (llm_image) *llm_image = std::move(shrunk);
  return c.llm.condition(embeds);
}

}  // namespace ovis
