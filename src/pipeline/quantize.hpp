// `ovis quantize`: one Ovis-U1 model (folder or GGUF) rewritten as one GGUF v3 file with its
// weights in a chosen type. The type of each tensor follows from what the tensor does:
//
//   role        tensors                                              f32/f16/bf16   q8_0 / q4_k
//   linear      the big Linear weights of the LLM, the ViT, the       requested      requested
//               visual head, the token refiner and the DiT
//   min8        the tied embedding / LM head, vte, the DiT and        requested      q8_0
//               refiner modulation (adaLN) weights: never below 8 bits
//   keep        1-D tensors (norms, biases, scales), convolution      requested      as stored
//               kernels, position embeddings, the CLS token, and the
//               DiT's small in/out projections (img_in, final_layer.linear, time_in, vector_in)
//   vae         the whole VAE (convolutions; it decodes in fp32)     requested      as stored
//
// Block types need whole blocks per row: a row length that is not a multiple of 256 turns a
// q4_k choice into q8_0, and one that is not a multiple of 32 keeps the stored type (counted in
// the report). `--tensor-type-rules "REGEX=TYPE,..."` overrides the role (first rule whose regex
// matches a part of the name wins, like sd.cpp); block types only ever apply to matrices.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"
#include "io/config.hpp"
#include "ovis/types.hpp"
#include "pipeline/model_source.hpp"

namespace ovis {

// "f32", "f16", "bf16", "q8_0", "q4_k" (case-insensitive).
bool parse_weight_type(const std::string& s, DType* out);
std::string weight_type_name(DType t);

struct TensorTypeRule {
  std::string pattern;
  std::regex re;
  DType type;
};
// "REGEX=TYPE,REGEX=TYPE"; errors name the bad entry.
std::vector<TensorTypeRule> parse_tensor_type_rules(const std::string& spec);

enum class TensorRole { Linear, Min8, Keep, Vae };
const char* tensor_role_name(TensorRole r);
TensorRole tensor_role(const std::string& name, const Shape& shape);

// The type `name` is written in. `note` receives why it differs from the rule or role choice
// (block size fallback), or stays empty.
DType plan_tensor_type(const std::string& name, const Shape& shape, DType stored, DType requested,
                       const std::vector<TensorTypeRule>& rules, std::string* note);

struct QuantizeOptions {
  DType type = DType::Q8_0;
  std::vector<TensorTypeRule> rules;
  ProgressFn on_progress;
};

struct QuantizeReport {
  int64_t tensors = 0;
  int64_t bytes_in = 0, bytes_out = 0;  // tensor data
  int64_t file_bytes = 0;
  std::map<std::string, int64_t> count_by_type;  // "Q4_K" -> tensors
  std::map<std::string, int64_t> bytes_by_type;
  std::vector<std::string> notes;  // fallbacks, one line each
};

// Writes `out_path` from `source` (refusing to overwrite any file the source reads).
QuantizeReport quantize_model(const ModelSource& source, const std::string& out_path,
                              const QuantizeOptions& opts);

// The tensors (name, shape) an Ovis-U1 of this configuration binds, in binding order.
std::vector<std::pair<std::string, Shape>> architecture_tensors(const ModelConfig& cfg);

// A model of the given configuration with deterministic synthetic bf16 weights (the same values
// `ovis bench` uses), written as `out_path`: for measuring file sizes, memory and speed at the
// real shapes without the checkpoint. The JSON texts go into the metadata as for a real model.
QuantizeReport quantize_synthetic(const std::string& config_json,
                                  const std::string& preprocessor_json,
                                  const std::string& tokenizer_json, const std::string& out_path,
                                  const QuantizeOptions& opts);

}  // namespace ovis
