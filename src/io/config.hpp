// Typed view of an Ovis-U1 Hugging Face snapshot's config.json and preprocessor_config.json.
// Every model dimension and constant comes from here (spec §2); nothing is taken from the fixture.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ovis {

struct LlmConfig {  // spec §2.2 (Qwen3)
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int intermediate_size = 0;
  float rms_norm_eps = 1e-6f;
  double rope_theta = 1e6;
  bool tie_word_embeddings = true;
  int bos_token_id = -1;
  int eos_token_id = -1;
  int max_position_embeddings = 0;
};

struct VisionConfig {  // spec §2.3 backbone (AIMv2)
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_channels = 3;
  int patch_size = 14;
  int image_size = 448;
  float rms_norm_eps = 1e-5f;
  bool qkv_bias = false;
  bool use_bias = false;
  int hidden_stride = 2;
  int temporal_patch_size = 1;
  bool disable_rope = false;
  int head_dim() const { return hidden_size / num_heads; }
  int pos_grid() const { return image_size / patch_size; }
};

struct VisualTokenizerConfig {  // spec §2.3
  int vocab_size = 0;           // head outputs vocab_size - 4 logits
  int hidden_stride = 2;
  std::string tokenize_function = "softmax";
  VisionConfig backbone;
};

struct VaeConfig {  // spec §2.5 (diffusers AutoencoderKL)
  int in_channels = 3;
  int out_channels = 3;
  int latent_channels = 4;
  std::vector<int> block_out_channels;
  int layers_per_block = 2;
  int norm_num_groups = 32;
  float scaling_factor = 0.13025f;
  bool has_shift = false;
  float shift_factor = 0.0f;
};

struct DitConfig {  // spec §2.5 (Yak)
  int in_channels = 16;
  int out_channels = 16;
  int hidden_size = 0;
  int num_heads = 0;
  std::vector<int> axes_dim;
  double theta = 10000;
  float mlp_ratio = 4.0f;
  bool qkv_bias = true;
  int depth = 0;
  int depth_single_blocks = 0;
  int vec_in_dim = 0;
  int context_in_dim = 0;
  bool guidance_embed = false;
  bool timestep_shift = true;
  double base_shift = 0.5;
  double max_shift = 1.15;
  int head_dim() const { return hidden_size / num_heads; }
  int mlp_hidden() const { return int(hidden_size * mlp_ratio); }
  // Refiner (SingleTokenRefiner): heads_num = 2 * num_heads, depth 2 (spec §7.7).
  int refiner_heads() const { return 2 * num_heads; }
  int refiner_depth = 2;
};

struct PreprocessorConfig {  // spec §2.4
  float image_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
  float image_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
  double rescale_factor = 1.0 / 255.0;
  int patch_size = 14;
  int hidden_stride = 2;
  int temporal_patch_size = 1;
  int min_pixels = 200704;
  int max_pixels = 2408448;
  int resample = 3;
};

struct ModelConfig {
  int hidden_size = 0;
  int multimodal_max_length = 4496;
  LlmConfig llm;
  VisualTokenizerConfig visual_tokenizer;
  DitConfig dit;
  VaeConfig vae;
  PreprocessorConfig preprocessor;
};

// Reads <dir>/config.json and <dir>/preprocessor_config.json. Files from strangers: sizes, JSON
// nesting and every value's type and range are checked (ranges generous for any released model);
// errors name the file and the field ("config.json: llm_config.vocab_size: ...").
ModelConfig load_model_config(const std::string& dir);
// Same from the texts of the two files (`origin`s name them in errors); no preprocessor text
// means its defaults.
ModelConfig parse_model_config_text(std::string_view config_text, const std::string& origin,
                                    std::optional<std::string_view> preprocessor_text,
                                    const std::string& pp_origin);
// Same from parsed JSON; preprocessor may be null (defaults).
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& origin,
                               const nlohmann::json* preprocessor, const std::string& pp_origin);

}  // namespace ovis
