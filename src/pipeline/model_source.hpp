// Where a model comes from: a Hugging Face checkpoint folder (config.json,
// preprocessor_config.json, tokenizer.json, safetensors shards) or one GGUF file written by
// `ovis quantize`, which carries the same three JSON files as string metadata and every tensor
// under its HF name. Everything downstream (binding, validation) is the same for both.
#pragma once
#include <memory>
#include <string>

#include "io/config.hpp"
#include "io/gguf.hpp"
#include "io/safetensors.hpp"
#include "text/tokenizer.hpp"

namespace ovis {

// GGUF metadata of an Ovis-U1 file.
inline constexpr const char* kGgufArchitecture = "ovis-u1";
inline constexpr const char* kGgufKeyArchitecture = "general.architecture";
inline constexpr const char* kGgufKeyConfig = "ovis-u1.config_json";
inline constexpr const char* kGgufKeyPreprocessor = "ovis-u1.preprocessor_config_json";
// tokenizer.json: whole under the standard key, or (as `ovis quantize` writes it) in parts
// "ovis-u1.tokenizer_json.0", ".1", ... of at most kGgufTokenizerPartBytes, split at UTF-8
// character boundaries, their number in "ovis-u1.tokenizer_json.parts". Parts, because
// @huggingface/gguf reads headers in 2 MB ranges and silently truncates a string that runs past
// the bytes it has loaded (it keeps at least 500 kB loaded ahead of each key).
inline constexpr const char* kGgufKeyTokenizer = "tokenizer.huggingface.json";
inline constexpr const char* kGgufKeyTokenizerParts = "ovis-u1.tokenizer_json.parts";
inline constexpr const char* kGgufKeyTokenizerPart = "ovis-u1.tokenizer_json.";
inline constexpr size_t kGgufTokenizerPartBytes = 256 << 10;

class ModelSource {
 public:
  // A folder or a .gguf file; throws one-line errors naming the path (and the GGUF key).
  static ModelSource open(const std::string& path);

  const std::string& path() const { return path_; }
  bool is_gguf() const { return gguf_ != nullptr; }
  const std::shared_ptr<GgufFile>& gguf() const { return gguf_; }

  // The raw texts of config.json, preprocessor_config.json and tokenizer.json.
  const std::string& config_json() const { return config_json_; }
  const std::string& preprocessor_json() const { return preprocessor_json_; }
  const std::string& tokenizer_json() const { return tokenizer_json_; }

  ModelConfig config() const;
  Tokenizer tokenizer() const;
  TensorStore tensors() const;

 private:
  std::string path_;
  std::shared_ptr<GgufFile> gguf_;
  std::string config_json_, preprocessor_json_, tokenizer_json_;
  std::string config_origin_, preprocessor_origin_, tokenizer_origin_;
};

}  // namespace ovis
