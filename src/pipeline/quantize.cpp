#include "pipeline/quantize.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "gen/vae.hpp"
#include "gen/yak_dit.hpp"
#include "io/gguf.hpp"
#include "io/weight_binder.hpp"
#include "llm/qwen3.hpp"
#include "ops/backend.hpp"
#include "vision/visual_tokenizer.hpp"

namespace ovis {

namespace {

bool starts_with(const std::string& s, const char* p) {
  return s.rfind(p, 0) == 0;
}

bool contains(const std::string& s, const char* p) {
  return s.find(p) != std::string::npos;
}

// A block type `t` for a matrix whose rows have K elements, or the next coarser choice.
DType fit_blocks(DType t, int64_t K, DType stored, std::string* note, const std::string& name) {
  if (t == DType::Q4_K && K % dtype_block_elems(DType::Q4_K) != 0) {
    if (note) *note = name + ": rows of " + std::to_string(K) + " are not whole Q4_K blocks of 256";
    t = DType::Q8_0;
  }
  if (t == DType::Q8_0 && K % dtype_block_elems(DType::Q8_0) != 0) {
    if (note) *note = name + ": rows of " + std::to_string(K) + " are not whole Q8_0 blocks of 32";
    t = stored;
  }
  return t;
}

// What a source tensor is written as: its own bytes when the type is unchanged, else converted
// row block by row block so that no whole f32 copy of a large table is ever held.
template <class Sink>
void convert_rows(const Tensor& src, DType target, Sink&& sink) {
  if (src.dtype() == target) {
    sink(src.raw(), src.nbytes());
    return;
  }
  const Tensor m = src.ndim() == 1 ? src.reshape({1, src.numel()}) : src;
  const int64_t rows = m.dim(0), row = rows ? m.numel() / rows : 0;
  const int64_t step = std::max<int64_t>(1, (int64_t(16) << 20) / std::max<int64_t>(row * 4, 1));
  for (int64_t r = 0; r < rows; r += step) {
    const Tensor part = m.slice_rows(r, std::min(rows, r + step)).reshape({-1, row});
    const Tensor f = part.to_f32();
    const Tensor out = target == DType::F32 ? f : f.to_dtype(target);
    sink(out.raw(), out.nbytes());
  }
}

// f16 cannot hold values beyond ±65504.
bool fits_f16(const Tensor& src) {
  const Tensor m = src.ndim() == 1 ? src.reshape({1, src.numel()}) : src;
  const int64_t rows = m.dim(0);
  for (int64_t r = 0; r < rows; r += 4096) {
    const Tensor f = m.slice_rows(r, std::min(rows, r + 4096)).to_f32();
    const float* p = f.f32();
    for (int64_t i = 0; i < f.numel(); ++i)
      if (std::isfinite(p[i]) && std::fabs(p[i]) >= 65504.0f) return false;
  }
  return true;
}

// JSON without insignificant whitespace, key order kept (the HF tokenizer.json shrinks from 11.4
// to 5.4 MB).
std::string compact_json(const std::string& text, const char* what) {
  try {
    return nlohmann::ordered_json::parse(text).dump();
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": malformed JSON: ", e.what());
  }
}

struct Plan {
  std::string name;
  Shape shape;
  DType stored, target;
};

QuantizeReport write_gguf(const std::vector<Plan>& plan,
                          const std::function<Tensor(const std::string&)>& fetch,
                          const std::string& config_json, const std::string& pp_json,
                          const std::string& tok_json, const std::string& out_path,
                          const QuantizeOptions& opts, QuantizeReport report) {
  GgufWriter w(out_path);
  w.set_string(kGgufKeyArchitecture, kGgufArchitecture);
  w.set_string("general.name", "Ovis-U1");
  w.set_u32("general.quantization_version", 2);
  w.set_string("ovis-u1.weight_type", weight_type_name(opts.type));
  w.set_string(kGgufKeyConfig, compact_json(config_json, "config.json"));
  w.set_string(kGgufKeyPreprocessor, compact_json(pp_json, "preprocessor_config.json"));
  const std::string tok = compact_json(tok_json, "tokenizer.json");
  uint32_t parts = 0;
  for (size_t pos = 0; pos < tok.size(); ++parts) {
    size_t end = std::min(tok.size(), pos + kGgufTokenizerPartBytes);
    while (end < tok.size() && (static_cast<unsigned char>(tok[end]) & 0xc0) == 0x80) --end;
    w.set_string(kGgufKeyTokenizerPart + std::to_string(parts), tok.substr(pos, end - pos));
    pos = end;
  }
  w.set_u32(kGgufKeyTokenizerParts, parts);
  for (const Plan& p : plan) w.add_tensor(p.name, p.shape, p.target);
  Timer t;
  const int total = int(plan.size());
  for (int i = 0; i < total; ++i) {
    const Plan& p = plan[size_t(i)];
    const Tensor src = fetch(p.name);
    convert_rows(src, p.target, [&](const void* data, size_t n) { w.write_tensor_data(data, n); });
    report.tensors++;
    report.bytes_in += int64_t(src.nbytes());
    const int64_t out_bytes = int64_t(dtype_bytes(p.target, shape_numel(p.shape)));
    report.bytes_out += out_bytes;
    report.count_by_type[dtype_name(p.target)]++;
    report.bytes_by_type[dtype_name(p.target)] += out_bytes;
    if (opts.on_progress) opts.on_progress(ProgressEvent{"quantize", i + 1, total, t.seconds()});
  }
  w.finish();
  report.file_bytes = int64_t(std::filesystem::file_size(out_path));
  return report;
}

// Plans every tensor; f16 targets that would overflow stay in the stored (or bf16) type.
std::vector<Plan> make_plan(const std::vector<std::pair<std::string, Shape>>& tensors,
                            const std::function<DType(const std::string&)>& stored_of,
                            const std::function<Tensor(const std::string&)>& fetch,
                            const QuantizeOptions& opts, QuantizeReport& report) {
  std::vector<Plan> plan;
  for (const auto& [name, shape] : tensors) {
    Plan p{name, shape, stored_of(name), DType::F32};
    std::string note;
    p.target = plan_tensor_type(name, shape, p.stored, opts.type, opts.rules, &note);
    if (p.target == DType::F16 && p.stored != DType::F16 && !fits_f16(fetch(name))) {
      p.target = p.stored == DType::F32 ? DType::BF16 : p.stored;
      note = name + ": values beyond the f16 range, kept as " + dtype_name(p.target);
    }
    if (!note.empty()) report.notes.push_back(note);
    plan.push_back(std::move(p));
  }
  return plan;
}

}  // namespace

bool parse_weight_type(const std::string& s, DType* out) {
  std::string l = s;
  for (char& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (l == "f32")
    *out = DType::F32;
  else if (l == "f16")
    *out = DType::F16;
  else if (l == "bf16")
    *out = DType::BF16;
  else if (l == "q8_0")
    *out = DType::Q8_0;
  else if (l == "q4_k")
    *out = DType::Q4_K;
  else
    return false;
  return true;
}

std::string weight_type_name(DType t) {
  std::string s = dtype_name(t);
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<TensorTypeRule> parse_tensor_type_rules(const std::string& spec) {
  std::vector<TensorTypeRule> rules;
  size_t pos = 0;
  while (pos <= spec.size()) {
    const size_t comma = spec.find(',', pos);
    const std::string item =
        spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0)
      fail("--tensor-type-rules: '", item, "' is not REGEX=TYPE");
    TensorTypeRule r;
    r.pattern = item.substr(0, eq);
    if (!parse_weight_type(item.substr(eq + 1), &r.type))
      fail("--tensor-type-rules: '", item, "': unknown type '", item.substr(eq + 1),
           "' (f32, f16, bf16, q8_0, q4_k)");
    try {
      r.re = std::regex(r.pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail("--tensor-type-rules: '", item, "': bad regular expression: ", e.what());
    }
    rules.push_back(std::move(r));
  }
  return rules;
}

const char* tensor_role_name(TensorRole r) {
  switch (r) {
    case TensorRole::Linear:
      return "linear";
    case TensorRole::Min8:
      return "min8";
    case TensorRole::Keep:
      return "keep";
    case TensorRole::Vae:
      return "vae";
  }
  return "?";
}

TensorRole tensor_role(const std::string& name, const Shape& shape) {
  if (starts_with(name, "visual_generator.vae.")) return TensorRole::Vae;
  if (shape.size() != 2) return TensorRole::Keep;
  for (const char* p :
       {"visual_generator.backbone.img_in.", "visual_generator.backbone.final_layer.linear.",
        "visual_generator.backbone.time_in.", "visual_generator.backbone.vector_in."})
    if (starts_with(name, p)) return TensorRole::Keep;
  if (name == "llm.model.embed_tokens.weight" || name == "llm.lm_head.weight" ||
      name == "vte.weight" || contains(name, "_mod.lin.") || contains(name, "modulation.lin.") ||
      contains(name, "adaLN_modulation."))
    return TensorRole::Min8;
  return TensorRole::Linear;
}

DType plan_tensor_type(const std::string& name, const Shape& shape, DType stored, DType requested,
                       const std::vector<TensorTypeRule>& rules, std::string* note) {
  const TensorRole role = tensor_role(name, shape);
  DType t = requested;
  if (dtype_is_quantized(requested)) {
    if (role == TensorRole::Keep || role == TensorRole::Vae)
      t = stored;
    else if (role == TensorRole::Min8)
      t = DType::Q8_0;
  }
  for (const TensorTypeRule& r : rules) {
    if (std::regex_search(name, r.re)) {
      t = r.type;
      break;
    }
  }
  if (dtype_is_quantized(t)) {
    const bool matrix = shape.size() == 2 && role != TensorRole::Vae;
    if (!matrix) {
      if (note)
        *note = name + ": " + dtype_name(t) + " applies only to matrices, kept as " +
                dtype_name(stored);
      return stored;
    }
    t = fit_blocks(t, shape[1], stored, note, name);
  }
  return t;
}

QuantizeReport quantize_model(const ModelSource& source, const std::string& out_path,
                              const QuantizeOptions& opts) {
  namespace fs = std::filesystem;
  const TensorStore store = source.tensors();
  // Refuse to overwrite what we read.
  std::set<std::string> inputs{source.path()};
  if (!source.is_gguf())
    for (const char* f : {"config.json", "preprocessor_config.json", "tokenizer.json",
                          "model.safetensors.index.json", "model.safetensors"})
      inputs.insert((fs::path(source.path()) / f).string());
  for (const auto& n : store.names()) inputs.insert(store.file_of(n));
  std::error_code ec;
  for (const auto& in : inputs)
    if (fs::exists(out_path, ec) && fs::exists(in, ec) && fs::equivalent(out_path, in, ec))
      fail(out_path, ": refusing to overwrite an input of the model being quantized");

  std::vector<std::pair<std::string, Shape>> tensors;
  for (const auto& n : store.names()) tensors.emplace_back(n, store.entry(n).shape);
  auto fetch = [&](const std::string& n) { return store.get(n); };
  QuantizeReport report;
  const auto plan = make_plan(
      tensors, [&](const std::string& n) { return store.entry(n).dtype; }, fetch, opts, report);
  return write_gguf(plan, fetch, source.config_json(), source.preprocessor_json(),
                    source.tokenizer_json(), out_path, opts, std::move(report));
}

std::vector<std::pair<std::string, Shape>> architecture_tensors(const ModelConfig& cfg) {
  auto backend = ops::make_backend(Device::cpu());
  const ops::Context ctx{backend.get(), Precision::F32};
  WeightBinder wb = WeightBinder::recording();
  {
    VisualTokenizer vt = VisualTokenizer::load(wb, ctx, cfg);
    Qwen3 llm = Qwen3::load(wb, ctx, cfg.llm);
    YakDiT dit = YakDiT::load(wb, ctx, cfg.dit);
    Vae vae = Vae::load(wb, ctx, cfg.vae);
  }
  return wb.recorded();
}

QuantizeReport quantize_synthetic(const std::string& config_json,
                                  const std::string& preprocessor_json,
                                  const std::string& tokenizer_json, const std::string& out_path,
                                  const QuantizeOptions& opts) {
  const nlohmann::json cj = nlohmann::json::parse(config_json);
  const nlohmann::json pj = nlohmann::json::parse(preprocessor_json);
  const ModelConfig cfg = parse_model_config(cj, "synthetic config", &pj, "synthetic preprocessor");
  const auto tensors = architecture_tensors(cfg);
  std::map<std::string, Shape> shapes(tensors.begin(), tensors.end());
  WeightBinder gen = WeightBinder::synthetic(1);
  auto fetch = [&](const std::string& n) { return gen.get(n, shapes.at(n)); };
  QuantizeReport report;
  const auto plan = make_plan(
      tensors, [](const std::string&) { return DType::BF16; }, fetch, opts, report);
  return write_gguf(plan, fetch, config_json, preprocessor_json, tokenizer_json, out_path, opts,
                    std::move(report));
}

}  // namespace ovis
