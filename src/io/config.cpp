#include "io/config.hpp"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/checked_int.hpp"
#include "io/json_field.hpp"
#include "io/json_limits.hpp"

namespace ovis {

namespace {

using nlohmann::json;

// Ranges a config value may take: generous for any released model (the largest hidden sizes are
// ~16k, intermediate sizes ~53k, vocabularies ~260k), and small enough that a product of three of
// them fits in int64 and nothing sized from the config can allocate more than the checkpoint's
// tensors, which must then match it, could justify.
constexpr int64_t kMaxDim = int64_t(1) << 18;        // hidden, intermediate and head sizes
constexpr int64_t kMaxVocab = int64_t(1) << 24;      // token vocabularies (text and visual)
constexpr int64_t kMaxLayers = 1024;                 // blocks of one stack
constexpr int64_t kMaxHeads = 4096;                  // attention heads
constexpr int64_t kMaxPositions = int64_t(1) << 24;  // sequence lengths
constexpr int64_t kMaxChannels = 4096;               // image/latent channels, norm groups
constexpr int64_t kMaxPatch = 1024;                  // patch sizes, image sides in patches
constexpr int64_t kMaxStride = 64;                   // merge strides
// Preprocessing pixel budget: the resized image (and its float copies) is bounded by it. The
// published Ovis-U1 value is 2408448.
constexpr int64_t kMaxPreprocessPixels = int64_t(1) << 24;
constexpr double kMaxTheta = 1e15;  // RoPE bases
constexpr double kMaxScale = 1e3;   // normalisation constants and scale factors

// A section of a config file: typed, range-checked reads of its members.
struct Section {
  JsonField f;

  bool has(const char* key) const { return f.has(key); }
  Section sub(const char* key) const {
    JsonField s = f[key];
    s.object();
    return Section{s};
  }
  int i(const char* key, int64_t lo, int64_t hi) const { return int(f[key].integer(lo, hi)); }
  int i_or(const char* key, int def, int64_t lo, int64_t hi) const {
    return has(key) ? i(key, lo, hi) : def;
  }
  double d(const char* key, double lo, double hi) const { return f[key].number(lo, hi); }
  double d_or(const char* key, double def, double lo, double hi) const {
    return has(key) ? d(key, lo, hi) : def;
  }
  bool b_or(const char* key, bool def) const { return has(key) ? f[key].boolean() : def; }
  std::vector<int> ints(const char* key, size_t max_count, int64_t lo, int64_t hi) const {
    const JsonField a = f[key];
    const size_t n = a.array().size();
    if (n == 0 || n > max_count) a.fail("expected 1 to ", max_count, " values, got ", n);
    std::vector<int> r;
    for (size_t k = 0; k < n; ++k) r.push_back(int(a.at(k).integer(lo, hi)));
    return r;
  }
  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    f.fail(args...);
  }
};

void check(bool ok, const std::string& file, const std::string& what) {
  if (!ok) fail(file, ": inconsistent config: ", what);
}

int64_t sum_of(const std::vector<int>& v, const std::string& file, const char* what) {
  int64_t s = 0;
  for (const int x : v) {
    auto r = checked_add(s, x);
    if (!r) fail(file, ": inconsistent config: the sum of ", what, " overflows");
    s = *r;
  }
  return s;
}

int64_t product_of(int64_t a, int64_t b, const std::string& file, const char* what) {
  auto r = checked_mul(a, b);
  if (!r) fail(file, ": inconsistent config: ", what, " overflows");
  return *r;
}

void parse_llm(const Section& l, ModelConfig& c, const std::string& file) {
  LlmConfig& L = c.llm;
  L.vocab_size = l.i("vocab_size", 1, kMaxVocab);
  L.hidden_size = l.i("hidden_size", 1, kMaxDim);
  L.num_layers = l.i("num_hidden_layers", 1, kMaxLayers);
  L.num_heads = l.i("num_attention_heads", 1, kMaxHeads);
  L.num_kv_heads = l.i_or("num_key_value_heads", L.num_heads, 1, kMaxHeads);
  L.head_dim = l.has("head_dim") ? l.i("head_dim", 1, kMaxDim) : L.hidden_size / L.num_heads;
  L.intermediate_size = l.i("intermediate_size", 1, kMaxDim);
  L.rms_norm_eps = float(l.d_or("rms_norm_eps", 1e-6, 1e-30, 1.0));
  L.rope_theta = l.d_or("rope_theta", 1e6, 1.0, kMaxTheta);
  if (l.has("rope_parameters")) {
    Section rp = l.sub("rope_parameters");
    if (rp.has("rope_theta")) L.rope_theta = rp.d("rope_theta", 1.0, kMaxTheta);
  }
  if (l.has("rope_scaling")) l.f["rope_scaling"].fail("is not supported");
  L.tie_word_embeddings = l.b_or("tie_word_embeddings", true);
  L.bos_token_id = l.has("bos_token_id") ? l.i("bos_token_id", 0, kMaxVocab - 1) : -1;
  L.eos_token_id = l.has("eos_token_id") ? l.i("eos_token_id", 0, kMaxVocab - 1) : -1;
  L.max_position_embeddings = l.i_or("max_position_embeddings", 40960, 1, kMaxPositions);
  check(L.head_dim >= 1, file, "llm_config.head_dim (hidden_size / num_attention_heads) is 0");
  check(L.num_heads % L.num_kv_heads == 0, file,
        "llm_config.num_attention_heads must be a multiple of num_key_value_heads");
  check(L.head_dim % 2 == 0, file, "llm_config.head_dim must be even");
  check(c.hidden_size == L.hidden_size, file, "hidden_size must equal llm_config.hidden_size");
}

void parse_visual_tokenizer(const Section& v, ModelConfig& c, const std::string& file) {
  VisualTokenizerConfig& V = c.visual_tokenizer;
  V.vocab_size = v.i("vocab_size", 6, kMaxVocab);
  V.hidden_stride = v.i_or("hidden_stride", 2, 1, kMaxStride);
  if (v.has("tokenize_function")) V.tokenize_function = v.f["tokenize_function"].string();
  if (V.tokenize_function != "softmax")
    v.f["tokenize_function"].fail("'", V.tokenize_function, "' is not supported (only softmax)");
  Section b = v.sub("backbone_config");
  VisionConfig& B = V.backbone;
  B.hidden_size = b.i("hidden_size", 1, kMaxDim);
  B.intermediate_size = b.i("intermediate_size", 1, kMaxDim);
  B.num_layers = b.i("num_hidden_layers", 1, kMaxLayers);
  B.num_heads = b.i("num_attention_heads", 1, kMaxHeads);
  B.num_channels = b.i_or("num_channels", 3, 1, kMaxChannels);
  B.patch_size = b.i_or("patch_size", 14, 1, kMaxPatch);
  B.image_size = b.i_or("image_size", 448, 1, kMaxPatch * kMaxPatch);
  B.rms_norm_eps = float(b.d_or("rms_norm_eps", 1e-5, 1e-30, 1.0));
  B.qkv_bias = b.b_or("qkv_bias", false);
  B.use_bias = b.b_or("use_bias", false);
  B.hidden_stride = b.i_or("hidden_stride", 2, 1, kMaxStride);
  B.temporal_patch_size = b.i_or("temporal_patch_size", 1, 1, kMaxStride);
  B.disable_rope = b.b_or("disable_rope", false);
  check(B.hidden_size % B.num_heads == 0, file, "backbone hidden_size % num_attention_heads");
  check(B.head_dim() % 4 == 0, file, "backbone head_dim must be a multiple of 4 (2D RoPE)");
  check(B.image_size % B.patch_size == 0, file, "backbone image_size % patch_size");
  check(B.pos_grid() <= kMaxPatch, file, "backbone image_size / patch_size exceeds 1024");
  check(B.num_channels == 3, file, "backbone num_channels must be 3");
  check(B.temporal_patch_size == 1, file, "temporal_patch_size must be 1");
}

void parse_generator(const Section& g, ModelConfig& c, const std::string& file) {
  DitConfig& D = c.dit;
  D.in_channels = g.i("in_channels", 1, kMaxChannels);
  D.out_channels = g.i_or("out_channels", D.in_channels, 1, kMaxChannels);
  D.hidden_size = g.i("hidden_size", 1, kMaxDim);
  D.num_heads = g.i("num_heads", 1, kMaxHeads);
  D.axes_dim = g.ints("axes_dim", 3, 1, kMaxDim);
  D.theta = g.d_or("theta", 10000, 1.0, kMaxTheta);
  D.mlp_ratio = float(g.d_or("mlp_ratio", 4.0, 1.0 / 64, 64.0));
  D.qkv_bias = g.b_or("qkv_bias", true);
  D.depth = g.i("depth", 1, kMaxLayers);
  D.depth_single_blocks = g.i("depth_single_blocks", 1, kMaxLayers);
  D.vec_in_dim = g.i("vec_in_dim", 1, kMaxDim);
  D.context_in_dim = g.i("context_in_dim", 1, 2 * kMaxDim);
  D.guidance_embed = g.b_or("guidance_embed", false);
  D.timestep_shift = g.b_or("timestep_shift", false);
  D.base_shift = g.d_or("base_shift", 0.5, -kMaxScale, kMaxScale);
  D.max_shift = g.d_or("max_shift", 1.15, -kMaxScale, kMaxScale);
  if (D.guidance_embed) g.f["guidance_embed"].fail("true is not supported");
  check(D.hidden_size % D.num_heads == 0, file, "generator hidden_size % num_heads");
  check(D.axes_dim.size() == 3 && sum_of(D.axes_dim, file, "axes_dim") == D.head_dim(), file,
        "visual_generator_config.axes_dim must have 3 entries summing to head_dim");
  for (int a : D.axes_dim) check(a % 2 == 0, file, "axes_dim entries must be even");
  check(D.mlp_hidden() >= 1 && D.mlp_hidden() <= kMaxDim, file,
        "visual_generator_config hidden_size * mlp_ratio is out of range");
  check(D.hidden_size % D.refiner_heads() == 0, file, "refiner heads");
  check(D.context_in_dim == product_of(2, c.hidden_size, file, "2 * hidden_size"), file,
        "visual_generator_config.context_in_dim must be 2 * hidden_size");
  check(D.vec_in_dim == D.hidden_size, file, "vec_in_dim must equal hidden_size");

  Section v = g.sub("vae_config");
  VaeConfig& A = c.vae;
  A.in_channels = v.i_or("in_channels", 3, 1, kMaxChannels);
  A.out_channels = v.i_or("out_channels", 3, 1, kMaxChannels);
  A.latent_channels = v.i("latent_channels", 1, kMaxChannels);
  A.block_out_channels = v.ints("block_out_channels", 16, 1, kMaxDim);
  A.layers_per_block = v.i("layers_per_block", 1, kMaxLayers);
  A.norm_num_groups = v.i("norm_num_groups", 1, kMaxChannels);
  A.scaling_factor = float(v.d("scaling_factor", 1.0 / kMaxScale, kMaxScale));
  A.has_shift = v.has("shift_factor");
  A.shift_factor = A.has_shift ? float(v.d("shift_factor", -kMaxScale, kMaxScale)) : 0.0f;
  for (int ch : A.block_out_channels)
    check(ch % A.norm_num_groups == 0, file, "vae block_out_channels % norm_num_groups");
  check(D.in_channels == product_of(4, A.latent_channels, file, "4 * vae latent_channels"), file,
        "generator in_channels must be 4 * vae latent_channels (2x2 packing)");
  check(A.in_channels == 3 && A.out_channels == 3, file, "vae must have 3 image channels");
}

void parse_preprocessor(const Section& p, PreprocessorConfig& P) {
  auto triple = [&](const char* key, float* out, double lo, double hi) {
    if (!p.has(key)) return;
    const JsonField a = p.f[key];
    if (a.array().size() != 3) a.fail("expected 3 values, got ", a.size());
    for (size_t k = 0; k < 3; ++k) out[k] = float(a.at(k).number(lo, hi));
  };
  triple("image_mean", P.image_mean, -kMaxScale, kMaxScale);
  triple("image_std", P.image_std, 1.0 / kMaxScale, kMaxScale);
  P.rescale_factor = p.d_or("rescale_factor", 1.0 / 255.0, 1.0 / (1 << 24), kMaxScale);
  P.patch_size = p.i_or("patch_size", 14, 1, kMaxPatch);
  P.hidden_stride = p.i_or("hidden_stride", 2, 1, kMaxStride);
  P.temporal_patch_size = p.i_or("temporal_patch_size", 1, 1, kMaxStride);
  P.min_pixels = p.i_or("min_pixels", 200704, 1, kMaxPreprocessPixels);
  P.max_pixels = p.i_or("max_pixels", 2408448, 1, kMaxPreprocessPixels);
  P.resample = p.i_or("resample", 3, 0, 5);
  if (P.resample != 3) p.f["resample"].fail("only 3 (bicubic) is supported");
  if (P.min_pixels > P.max_pixels)
    p.f["min_pixels"].fail(P.min_pixels, " exceeds max_pixels ", P.max_pixels);
}

}  // namespace

ModelConfig parse_model_config(const nlohmann::json& root, const std::string& cfg_path,
                               const nlohmann::json* preprocessor, const std::string& pp_path) {
  const Section r{JsonField(root, cfg_path)};
  r.f.object();
  ModelConfig c;
  c.hidden_size = r.i("hidden_size", 1, kMaxDim);
  c.multimodal_max_length = r.i_or("multimodal_max_length", 4496, 1, kMaxPositions);
  parse_llm(r.sub("llm_config"), c, cfg_path);
  parse_visual_tokenizer(r.sub("visual_tokenizer_config"), c, cfg_path);
  parse_generator(r.sub("visual_generator_config"), c, cfg_path);
  if (preprocessor) {
    const Section p{JsonField(*preprocessor, pp_path)};
    p.f.object();
    parse_preprocessor(p, c.preprocessor);
  }
  check(c.preprocessor.patch_size == c.visual_tokenizer.backbone.patch_size, pp_path,
        "patch_size differs from the backbone's");
  return c;
}

ModelConfig parse_model_config_text(std::string_view config_text, const std::string& cfg_path,
                                    std::optional<std::string_view> preprocessor_text,
                                    const std::string& pp_path) {
  const json root = parse_json(config_text, cfg_path, kConfigJsonLimits);
  if (!preprocessor_text) return parse_model_config(root, cfg_path, nullptr, pp_path);
  const json pp = parse_json(*preprocessor_text, pp_path, kConfigJsonLimits);
  return parse_model_config(root, cfg_path, &pp, pp_path);
}

ModelConfig load_model_config(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail(dir, ": model folder does not exist or is not a directory");
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  const std::string pp_path = (fs::path(dir) / "preprocessor_config.json").string();
  for (const std::string* p : {&cfg_path, &pp_path})
    if (!fs::exists(*p)) fail(*p, ": cannot open (is this an Ovis-U1 checkpoint folder?)");
  const json root = read_json_file(cfg_path, kConfigJsonLimits);
  const json pp = read_json_file(pp_path, kConfigJsonLimits);
  return parse_model_config(root, cfg_path, &pp, pp_path);
}

}  // namespace ovis
