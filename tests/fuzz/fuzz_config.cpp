// Fuzz target: config.json (parsed with the model-file limits, then every field read and checked).
#include <cstdint>
#include <optional>
#include <string_view>

#include "core/error.hpp"
#include "io/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ovis::parse_model_config_text(text, "config.json", std::nullopt, "preprocessor_config.json");
  } catch (const ovis::Error&) {
  }
  return 0;
}
