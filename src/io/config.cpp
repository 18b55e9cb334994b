#include "io/config.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace ovis {

namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open (is this an Ovis-U1 checkpoint folder?)");
  try {
    json j;
    in >> j;
    if (!j.is_object()) fail(path, ": expected a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": malformed JSON: ", e.what());
  }
}

struct Reader {
  const std::string& file;
  std::string prefix;
  const json& j;

  const json& at(const char* key) const {
    if (!j.contains(key) || j[key].is_null()) fail(file, ": missing field '", prefix, key, "'");
    return j[key];
  }
  bool has(const char* key) const { return j.contains(key) && !j[key].is_null(); }
  Reader sub(const char* key) const {
    const json& v = at(key);
    if (!v.is_object()) fail(file, ": field '", prefix, key, "' must be an object");
    return Reader{file, prefix + key + ".", v};
  }
  int i(const char* key, bool positive = true) const {
    const json& v = at(key);
    if (!v.is_number_integer()) fail(file, ": field '", prefix, key, "' must be an integer");
    int64_t x = v.get<int64_t>();
    if ((positive && x <= 0) || x > (1ll << 31))
      fail(file, ": field '", prefix, key, "' has an impossible value ", x);
    return int(x);
  }
  int i_or(const char* key, int def) const { return has(key) ? i(key) : def; }
  double d(const char* key) const {
    const json& v = at(key);
    if (!v.is_number()) fail(file, ": field '", prefix, key, "' must be a number");
    return v.get<double>();
  }
  double d_or(const char* key, double def) const { return has(key) ? d(key) : def; }
  bool b_or(const char* key, bool def) const {
    if (!has(key)) return def;
    if (!j[key].is_boolean()) fail(file, ": field '", prefix, key, "' must be a boolean");
    return j[key].get<bool>();
  }
  std::vector<int> ints(const char* key) const {
    const json& v = at(key);
    if (!v.is_array() || v.empty())
      fail(file, ": field '", prefix, key, "' must be a non-empty array");
    std::vector<int> r;
    for (const auto& x : v) {
      if (!x.is_number_integer() || x.get<int64_t>() <= 0)
        fail(file, ": field '", prefix, key, "' must hold positive integers");
      r.push_back(x.get<int>());
    }
    return r;
  }
};

void check(bool ok, const std::string& file, const std::string& what) {
  if (!ok) fail(file, ": inconsistent config: ", what);
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& root, const std::string& cfg_path,
                               const nlohmann::json* preprocessor, const std::string& pp_path) {
  if (!root.is_object()) fail(cfg_path, ": expected a JSON object");
  Reader r{cfg_path, "", root};
  ModelConfig c;
  c.hidden_size = r.i("hidden_size");
  c.multimodal_max_length = r.i_or("multimodal_max_length", 4496);

  {
    Reader l = r.sub("llm_config");
    LlmConfig& L = c.llm;
    L.vocab_size = l.i("vocab_size");
    L.hidden_size = l.i("hidden_size");
    L.num_layers = l.i("num_hidden_layers");
    L.num_heads = l.i("num_attention_heads");
    L.num_kv_heads = l.i_or("num_key_value_heads", L.num_heads);
    L.head_dim = l.has("head_dim") ? l.i("head_dim") : L.hidden_size / L.num_heads;
    L.intermediate_size = l.i("intermediate_size");
    L.rms_norm_eps = float(l.d_or("rms_norm_eps", 1e-6));
    L.rope_theta = l.has("rope_theta") ? l.d("rope_theta") : 1e6;
    if (l.has("rope_parameters")) {
      Reader rp = l.sub("rope_parameters");
      if (rp.has("rope_theta")) L.rope_theta = rp.d("rope_theta");
    }
    if (l.has("rope_scaling")) fail(cfg_path, ": llm_config.rope_scaling is not supported");
    L.tie_word_embeddings = l.b_or("tie_word_embeddings", true);
    L.bos_token_id = l.has("bos_token_id") ? l.i("bos_token_id", false) : -1;
    L.eos_token_id = l.has("eos_token_id") ? l.i("eos_token_id", false) : -1;
    L.max_position_embeddings = l.i_or("max_position_embeddings", 40960);
    check(L.num_heads % L.num_kv_heads == 0, cfg_path,
          "llm_config.num_attention_heads must be a multiple of num_key_value_heads");
    check(L.head_dim % 2 == 0, cfg_path, "llm_config.head_dim must be even");
    check(c.hidden_size == L.hidden_size, cfg_path,
          "hidden_size must equal llm_config.hidden_size");
  }
  {
    Reader v = r.sub("visual_tokenizer_config");
    VisualTokenizerConfig& V = c.visual_tokenizer;
    V.vocab_size = v.i("vocab_size");
    V.hidden_stride = v.i_or("hidden_stride", 2);
    if (v.has("tokenize_function"))
      V.tokenize_function = v.at("tokenize_function").get<std::string>();
    if (V.tokenize_function != "softmax")
      fail(cfg_path, ": visual_tokenizer_config.tokenize_function '", V.tokenize_function,
           "' is not supported (only softmax)");
    check(V.vocab_size > 5, cfg_path, "visual_tokenizer_config.vocab_size must exceed 5");
    Reader b = v.sub("backbone_config");
    VisionConfig& B = V.backbone;
    B.hidden_size = b.i("hidden_size");
    B.intermediate_size = b.i("intermediate_size");
    B.num_layers = b.i("num_hidden_layers");
    B.num_heads = b.i("num_attention_heads");
    B.num_channels = b.i_or("num_channels", 3);
    B.patch_size = b.i_or("patch_size", 14);
    B.image_size = b.i_or("image_size", 448);
    B.rms_norm_eps = float(b.d_or("rms_norm_eps", 1e-5));
    B.qkv_bias = b.b_or("qkv_bias", false);
    B.use_bias = b.b_or("use_bias", false);
    B.hidden_stride = b.i_or("hidden_stride", 2);
    B.temporal_patch_size = b.i_or("temporal_patch_size", 1);
    B.disable_rope = b.b_or("disable_rope", false);
    check(B.hidden_size % B.num_heads == 0, cfg_path, "backbone hidden_size % num_attention_heads");
    check(B.head_dim() % 4 == 0, cfg_path, "backbone head_dim must be a multiple of 4 (2D RoPE)");
    check(B.image_size % B.patch_size == 0, cfg_path, "backbone image_size % patch_size");
    check(B.num_channels == 3, cfg_path, "backbone num_channels must be 3");
    check(B.temporal_patch_size == 1, cfg_path, "temporal_patch_size must be 1");
  }
  {
    Reader g = r.sub("visual_generator_config");
    DitConfig& D = c.dit;
    D.in_channels = g.i("in_channels");
    D.out_channels = g.i_or("out_channels", D.in_channels);
    D.hidden_size = g.i("hidden_size");
    D.num_heads = g.i("num_heads");
    D.axes_dim = g.ints("axes_dim");
    D.theta = g.d_or("theta", 10000);
    D.mlp_ratio = float(g.d_or("mlp_ratio", 4.0));
    D.qkv_bias = g.b_or("qkv_bias", true);
    D.depth = g.i("depth");
    D.depth_single_blocks = g.i("depth_single_blocks");
    D.vec_in_dim = g.i("vec_in_dim");
    D.context_in_dim = g.i("context_in_dim");
    D.guidance_embed = g.b_or("guidance_embed", false);
    D.timestep_shift = g.b_or("timestep_shift", false);
    D.base_shift = g.d_or("base_shift", 0.5);
    D.max_shift = g.d_or("max_shift", 1.15);
    if (D.guidance_embed)
      fail(cfg_path, ": visual_generator_config.guidance_embed=true is not supported");
    check(D.hidden_size % D.num_heads == 0, cfg_path, "generator hidden_size % num_heads");
    int sum = 0;
    for (int a : D.axes_dim) sum += a;
    check(D.axes_dim.size() == 3 && sum == D.head_dim(), cfg_path,
          "visual_generator_config.axes_dim must have 3 entries summing to head_dim");
    for (int a : D.axes_dim) check(a % 2 == 0, cfg_path, "axes_dim entries must be even");
    check(D.hidden_size % D.refiner_heads() == 0, cfg_path, "refiner heads");
    check(D.context_in_dim == 2 * c.hidden_size, cfg_path,
          "visual_generator_config.context_in_dim must be 2 * hidden_size");
    check(D.vec_in_dim == D.hidden_size, cfg_path, "vec_in_dim must equal hidden_size");
    Reader v = g.sub("vae_config");
    VaeConfig& A = c.vae;
    A.in_channels = v.i_or("in_channels", 3);
    A.out_channels = v.i_or("out_channels", 3);
    A.latent_channels = v.i("latent_channels");
    A.block_out_channels = v.ints("block_out_channels");
    A.layers_per_block = v.i("layers_per_block");
    A.norm_num_groups = v.i("norm_num_groups");
    A.scaling_factor = float(v.d("scaling_factor"));
    A.has_shift = v.has("shift_factor");
    A.shift_factor = A.has_shift ? float(v.d("shift_factor")) : 0.0f;
    for (int ch : A.block_out_channels)
      check(ch % A.norm_num_groups == 0, cfg_path, "vae block_out_channels % norm_num_groups");
    check(D.in_channels == A.latent_channels * 4, cfg_path,
          "generator in_channels must be 4 * vae latent_channels (2x2 packing)");
    check(A.in_channels == 3 && A.out_channels == 3, cfg_path, "vae must have 3 image channels");
  }

  if (preprocessor) {
    Reader p{pp_path, "", *preprocessor};
    PreprocessorConfig& P = c.preprocessor;
    if (p.has("image_mean")) {
      auto m = p.at("image_mean");
      if (!m.is_array() || m.size() != 3) fail(pp_path, ": image_mean must have 3 values");
      for (int k = 0; k < 3; ++k) P.image_mean[k] = m[k].get<float>();
    }
    if (p.has("image_std")) {
      auto s = p.at("image_std");
      if (!s.is_array() || s.size() != 3) fail(pp_path, ": image_std must have 3 values");
      for (int k = 0; k < 3; ++k) {
        P.image_std[k] = s[k].get<float>();
        if (!(P.image_std[k] > 0)) fail(pp_path, ": image_std must be positive");
      }
    }
    P.rescale_factor = p.d_or("rescale_factor", 1.0 / 255.0);
    P.patch_size = p.i_or("patch_size", 14);
    P.hidden_stride = p.i_or("hidden_stride", 2);
    P.temporal_patch_size = p.i_or("temporal_patch_size", 1);
    P.min_pixels = p.i_or("min_pixels", 200704);
    P.max_pixels = p.i_or("max_pixels", 2408448);
    P.resample = p.i_or("resample", 3);
    if (P.resample != 3) fail(pp_path, ": only resample=3 (bicubic) is supported");
  }
  check(c.preprocessor.patch_size == c.visual_tokenizer.backbone.patch_size, pp_path,
        "patch_size differs from the backbone's");
  return c;
}

}  // namespace ovis

namespace ovis {

ModelConfig load_model_config(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail(dir, ": model folder does not exist or is not a directory");
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  const std::string pp_path = (fs::path(dir) / "preprocessor_config.json").string();
  nlohmann::json root = read_json(cfg_path);
  nlohmann::json pp = read_json(pp_path);
  return parse_model_config(root, cfg_path, &pp, pp_path);
}

}  // namespace ovis
