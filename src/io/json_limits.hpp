// JSON from strangers (model files today; HTTP bodies and GGUF metadata later), parsed with
// limits that hold for any input: the input size, the nesting depth and the memory of the parsed
// tree are checked while parsing, so a hostile file stops at the first byte past a limit.
// nlohmann's parser itself is iterative, but copying, comparing or walking a 100k-deep tree
// recursively overflows the stack, and a few MB of "[{},{},...]" would grow into a tree of
// hundreds of MB. Every error is one line naming the source.
#pragma once
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace ovis {

struct JsonLimits {
  size_t max_bytes;       // size of the input text
  int max_depth;          // arrays/objects nested inside one another (the root is depth 1)
  size_t max_tree_bytes;  // estimated heap the parsed tree may occupy
};

// config.json, preprocessor_config.json, generation_config.json and similar: a few KB in practice.
inline constexpr JsonLimits kConfigJsonLimits{4u << 20, 32, 64u << 20};
// tokenizer.json: Qwen3's is 11 MB (about 50 MB as a tree); this admits vocabularies ~8x larger.
inline constexpr JsonLimits kTokenizerJsonLimits{128u << 20, 64, 512u << 20};
// model.safetensors.index.json: one short string per tensor.
inline constexpr JsonLimits kIndexJsonLimits{64u << 20, 16, 256u << 20};

// Parses `text`; throws ovis::Error "<origin>: ..." when it is not JSON or exceeds `limits`.
nlohmann::json parse_json(std::string_view text, const std::string& origin,
                          const JsonLimits& limits);

// Reads and parses the file at `path` (its size is checked before it is read). Errors name `path`.
nlohmann::json read_json_file(const std::string& path, const JsonLimits& limits);

}  // namespace ovis
