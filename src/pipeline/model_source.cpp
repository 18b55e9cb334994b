#include "pipeline/model_source.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "io/json_limits.hpp"
#include "io/read_file.hpp"

namespace ovis {

namespace {

// Files from strangers: bounded like every other reader of untrusted input (io/read_file.hpp).
std::string read_text(const std::string& path, const char* hint, size_t max_bytes) {
  if (!std::filesystem::exists(path)) fail(path, ": cannot open", hint);
  return read_file_limited(path, max_bytes, "file");
}

}  // namespace

ModelSource ModelSource::open(const std::string& path) {
  namespace fs = std::filesystem;
  ModelSource s;
  s.path_ = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    s.config_origin_ = (fs::path(path) / "config.json").string();
    s.preprocessor_origin_ = (fs::path(path) / "preprocessor_config.json").string();
    s.tokenizer_origin_ = (fs::path(path) / "tokenizer.json").string();
    s.config_json_ = read_text(s.config_origin_, " (is this an Ovis-U1 checkpoint folder?)",
                               kConfigJsonLimits.max_bytes);
    s.preprocessor_json_ = read_text(s.preprocessor_origin_, "", kConfigJsonLimits.max_bytes);
    s.tokenizer_json_ =
        read_text(s.tokenizer_origin_, " tokenizer file", kTokenizerJsonLimits.max_bytes);
    return s;
  }
  if (!fs::exists(path, ec)) fail(path, ": model folder or GGUF file does not exist");
  if (!is_gguf_file(path))
    fail(path, ": not a model folder or a GGUF file (no GGUF magic at its start)");
  s.gguf_ = GgufFile::open(path);
  const auto arch = s.gguf_->get_string(kGgufKeyArchitecture);
  if (!arch) fail(path, ": missing GGUF key '", kGgufKeyArchitecture, "'");
  if (*arch != kGgufArchitecture)
    fail(path, ": GGUF key '", kGgufKeyArchitecture, "' is '", *arch, "', expected '",
         kGgufArchitecture, "' (not an Ovis-U1 model file)");
  auto required = [&](const char* key) {
    auto v = s.gguf_->get_string(key);
    if (!v) fail(path, ": missing GGUF key '", key, "'");
    return *v;
  };
  s.config_json_ = required(kGgufKeyConfig);
  s.preprocessor_json_ = required(kGgufKeyPreprocessor);
  if (auto whole = s.gguf_->get_string(kGgufKeyTokenizer)) {
    s.tokenizer_json_ = *whole;
  } else {
    const auto& md = s.gguf_->header().metadata;
    auto it = md.find(kGgufKeyTokenizerParts);
    if (it == md.end())
      fail(path, ": missing GGUF key '", kGgufKeyTokenizer, "' (or '", kGgufKeyTokenizerParts,
           "')");
    if (it->second.type != GgufType::U32)
      fail(path, ": GGUF key '", kGgufKeyTokenizerParts, "' must be a uint32");
    for (uint64_t i = 0; i < it->second.u; ++i)
      s.tokenizer_json_ += required((kGgufKeyTokenizerPart + std::to_string(i)).c_str());
  }
  s.config_origin_ = path + ":" + kGgufKeyConfig;
  s.preprocessor_origin_ = path + ":" + kGgufKeyPreprocessor;
  s.tokenizer_origin_ = path + ":" + kGgufKeyTokenizer;
  return s;
}

ModelConfig ModelSource::config() const {
  return parse_model_config_text(config_json_, config_origin_, preprocessor_json_,
                                 preprocessor_origin_);
}

Tokenizer ModelSource::tokenizer() const {
  return Tokenizer::from_json_text(tokenizer_json_, tokenizer_origin_);
}

TensorStore ModelSource::tensors() const {
  return gguf_ ? TensorStore::of_file(gguf_) : TensorStore::open_dir(path_);
}

}  // namespace ovis
