// config.json / preprocessor_config.json from strangers: every hostile value (huge integers,
// wrong types, deep nesting, values whose sums or products overflow) is one ovis::Error naming
// the file and the field; legal files still load.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/config.hpp"
#include "support/golden.hpp"

using namespace ovis;
using nlohmann::json;

namespace {

const json& fixture_config() {
  static const json j = json::parse(std::ifstream(test::fixture_path("config.json")));
  return j;
}
const json& fixture_preprocessor() {
  static const json j = json::parse(std::ifstream(test::fixture_path("preprocessor_config.json")));
  return j;
}

// The error of parsing the two texts, or "" when they load.
std::string config_error(const std::string& config, const std::string& pp) {
  try {
    parse_model_config_text(config, "/m/config.json", pp, "/m/preprocessor_config.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The fixture's config with `edit` applied (a JSON pointer and a value).
std::string config_with(const std::string& pointer, const json& value) {
  json c = fixture_config();
  c[json::json_pointer(pointer)] = value;
  return c.dump();
}
std::string preprocessor_with(const std::string& pointer, const json& value) {
  json p = fixture_preprocessor();
  p[json::json_pointer(pointer)] = value;
  return p.dump();
}

constexpr int64_t k2p31 = int64_t(1) << 31;
constexpr int64_t k2p62 = int64_t(1) << 62;

TEST(ConfigHostile, LegalConfigsLoad) {
  EXPECT_EQ(config_error(fixture_config().dump(), fixture_preprocessor().dump()), "");
  const ModelConfig c = load_model_config(test::fixture_dir());
  EXPECT_EQ(c.dit.axes_dim, (std::vector<int>{8, 28, 28}));
}

TEST(ConfigHostile, HugeIntegersAreOutOfRange) {
  const std::string pp = fixture_preprocessor().dump();
  const struct {
    const char* pointer;
    int64_t value;
    const char* field;
  } cases[] = {
      {"/llm_config/num_attention_heads", k2p31, "llm_config.num_attention_heads: 2147483648"},
      {"/llm_config/vocab_size", k2p31, "llm_config.vocab_size: 2147483648"},
      {"/llm_config/vocab_size", k2p62, "llm_config.vocab_size: 4611686018427387904"},
      {"/hidden_size", k2p62, "hidden_size: 4611686018427387904"},
      {"/llm_config/num_hidden_layers", k2p31, "llm_config.num_hidden_layers"},
      {"/llm_config/max_position_embeddings", k2p62, "llm_config.max_position_embeddings"},
      {"/llm_config/eos_token_id", -5, "llm_config.eos_token_id: -5"},
      {"/visual_tokenizer_config/backbone_config/num_attention_heads", 0,
       "backbone_config.num_attention_heads: 0"},
      {"/visual_generator_config/depth", k2p62, "visual_generator_config.depth"},
      {"/visual_generator_config/axes_dim/1", k2p31, "visual_generator_config.axes_dim[1]"},
      {"/visual_generator_config/context_in_dim", k2p62, "context_in_dim"},
      {"/visual_generator_config/vae_config/block_out_channels/0", k2p31,
       "vae_config.block_out_channels[0]"},
      {"/visual_tokenizer_config/backbone_config/image_size", k2p31, "backbone_config.image_size"},
      {"/multimodal_max_length", k2p62, "multimodal_max_length"},
  };
  for (const auto& c : cases) {
    const std::string msg = config_error(config_with(c.pointer, c.value), pp);
    EXPECT_EQ(msg.rfind("/m/config.json: ", 0), 0u) << c.pointer << ": " << msg;
    EXPECT_NE(msg.find(c.field), std::string::npos) << msg;
    EXPECT_NE(msg.find("out of range"), std::string::npos) << msg;
  }
  // Products of in-range values stay consistent: 2 * hidden_size must equal context_in_dim.
  const std::string msg = config_error(config_with("/visual_generator_config/mlp_ratio", 1e30), pp);
  EXPECT_NE(msg.find("visual_generator_config.mlp_ratio: 1e+30 is out of range"), std::string::npos)
      << msg;
}

TEST(ConfigHostile, WrongTypesNameTheField) {
  const std::string pp = fixture_preprocessor().dump();
  const struct {
    const char* pointer;
    json value;
    const char* message;
  } cases[] = {
      {"/visual_tokenizer_config/tokenize_function", 5,
       "visual_tokenizer_config.tokenize_function: expected a string, got an integer"},
      {"/visual_generator_config/axes_dim", json::array({4, "x", 14}),
       "visual_generator_config.axes_dim[1]: expected an integer, got a string"},
      {"/visual_generator_config/axes_dim", "4,14,14",
       "visual_generator_config.axes_dim: expected an array, got a string"},
      {"/llm_config", json::array(), "llm_config: expected an object, got an array"},
      {"/llm_config/rms_norm_eps", "small",
       "llm_config.rms_norm_eps: expected a number, got a string"},
      {"/llm_config/tie_word_embeddings", 1,
       "llm_config.tie_word_embeddings: expected a boolean, got an integer"},
      {"/llm_config/hidden_size", 48.5,
       "llm_config.hidden_size: expected an integer, got a fractional number"},
      {"/visual_generator_config/vae_config/scaling_factor", json::object(),
       "visual_generator_config.vae_config.scaling_factor: expected a number, got an object"},
      {"/visual_generator_config/vae_config/block_out_channels", json::array(),
       "visual_generator_config.vae_config.block_out_channels: expected 1 to 16 values, got 0"},
  };
  for (const auto& c : cases) {
    const std::string msg = config_error(config_with(c.pointer, c.value), pp);
    EXPECT_EQ(msg, std::string("/m/config.json: ") + c.message) << c.pointer;
  }
}

TEST(ConfigHostile, PreprocessorValuesAreChecked) {
  const std::string cfg = fixture_config().dump();
  const struct {
    const char* pointer;
    json value;
    const char* message;
  } cases[] = {
      {"/image_mean", json::array({"x", 1, 2}), "image_mean[0]: expected a number, got a string"},
      {"/image_mean", json::array({1, 2}), "image_mean: expected 3 values, got 2"},
      {"/image_std", json::array({0, 1, 1}), "image_std[0]: 0 is out of range"},
      {"/min_pixels", k2p31, "min_pixels: 2147483648 is out of range"},
      {"/max_pixels", k2p62, "max_pixels: 4611686018427387904 is out of range"},
      {"/min_pixels", 4000000, "min_pixels: 4000000 exceeds max_pixels 2408448"},
      {"/resample", "bicubic", "resample: expected an integer, got a string"},
  };
  for (const auto& c : cases) {
    const std::string msg = config_error(cfg, preprocessor_with(c.pointer, c.value));
    EXPECT_EQ(msg.rfind("/m/preprocessor_config.json: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(c.message), std::string::npos) << msg;
  }
}

TEST(ConfigHostile, DeepNestingAndHugeFilesStopEarly) {
  const std::string pp = fixture_preprocessor().dump();
  for (size_t levels : {size_t(100000), size_t(1000000)}) {
    const std::string deep =
        "{\"llm_config\":" + std::string(levels, '[') + std::string(levels, ']') + "}";
    EXPECT_EQ(config_error(deep, pp), "/m/config.json: JSON nested deeper than 32 levels");
    const std::string deep_pp = "{\"image_mean\":" + std::string(levels, '[');
    EXPECT_EQ(config_error(fixture_config().dump(), deep_pp),
              "/m/preprocessor_config.json: JSON nested deeper than 32 levels");
  }
  const std::string padded = "{" + std::string(5 << 20, ' ') + "}";
  EXPECT_NE(config_error(padded, pp).find("exceed the 4194304-byte limit"), std::string::npos);
}

}  // namespace
