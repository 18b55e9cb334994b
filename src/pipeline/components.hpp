// Everything loaded from one checkpoint folder or GGUF file (pipeline/model_source.hpp): config,
// tokenizer, the mapped tensors and the four models, bound and validated once (every tensor's
// name, shape and dtype; no unknown extras).
#pragma once
#include <string>

#include "gen/vae.hpp"
#include "gen/yak_dit.hpp"
#include "io/config.hpp"
#include "io/image.hpp"
#include "io/safetensors.hpp"
#include "io/weight_binder.hpp"
#include "llm/qwen3.hpp"
#include "ops/backend.hpp"
#include "pipeline/model_source.hpp"
#include "text/tokenizer.hpp"
#include "vision/visual_tokenizer.hpp"

namespace ovis {

struct Components {
  // Loads everything onto `ctx` (whose backend must outlive the components).
  Components(const std::string& dir, const ops::Context& ctx);
  Components(const Components&) = delete;

  std::string dir;  // the folder or GGUF file
  ops::Context ctx;
  ModelSource source;
  ModelConfig cfg;
  Tokenizer tok;
  TensorStore store;
  WeightBinder binder;
  VisualTokenizer vt;
  Qwen3 llm;
  YakDiT dit;
  Vae vae;
  int64_t eos_id = -1;  // <|im_end|> (spec §6.3)

  // Visual embeddings [N_vis, hidden] of one image (spec §4).
  Tensor encode_image(const Image& img) const;
};

}  // namespace ovis
