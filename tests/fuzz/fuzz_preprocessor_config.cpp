// Fuzz target: preprocessor_config.json next to a valid config.json.
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "io/config.hpp"

namespace {

// The fields of the published Ovis-U1-3B config.json that the loader reads (spec §2).
constexpr std::string_view kConfig = R"json({
  "hidden_size": 2048,
  "llm_config": {"vocab_size": 151936, "hidden_size": 2048, "num_hidden_layers": 28,
    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
    "intermediate_size": 6144},
  "visual_tokenizer_config": {"vocab_size": 65536, "hidden_stride": 2,
    "backbone_config": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 24,
      "num_attention_heads": 8, "patch_size": 14, "image_size": 448}},
  "visual_generator_config": {"in_channels": 16, "hidden_size": 1536, "num_heads": 12,
    "axes_dim": [16, 56, 56], "depth": 6, "depth_single_blocks": 12, "vec_in_dim": 1536,
    "context_in_dim": 4096,
    "vae_config": {"latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
      "layers_per_block": 2, "norm_num_groups": 32, "scaling_factor": 0.13025}}
})json";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ovis::parse_model_config_text(kConfig, "config.json", text, "preprocessor_config.json");
  } catch (const ovis::Error&) {
  }
  return 0;
}
