#include "pipeline/components.hpp"

#include "core/error.hpp"
#include "vision/preprocess.hpp"

namespace ovis {

Components::Components(const std::string& d, const ops::Context& c)
    : dir(d),
      ctx(c),
      source(ModelSource::open(d)),
      cfg(source.config()),
      tok(source.tokenizer()),
      store(source.tensors()),
      binder(store),
      vt(VisualTokenizer::load(binder, c, cfg)),
      llm(Qwen3::load(binder, c, cfg.llm)),
      dit(YakDiT::load(binder, c, cfg.dit)),
      vae(Vae::load(binder, c, cfg.vae)) {
  binder.check_no_extra({"llm.", "visual_tokenizer.", "vte.", "visual_generator."});
  if (tok.vocab_size() > cfg.llm.vocab_size)
    fail(tok.path(), ": ", tok.vocab_size(), " tokens exceed llm_config.vocab_size ",
         cfg.llm.vocab_size);
  auto im_end = tok.find_id("<|im_end|>");
  eos_id = im_end ? *im_end : cfg.llm.eos_token_id;
}

Tensor Components::encode_image(const Image& img) const {
  PreprocessedImage p = preprocess_image(img, cfg.preprocessor);
  return vt.encode(p.pixel_values, p.grid_h, p.grid_w);
}

}  // namespace ovis
