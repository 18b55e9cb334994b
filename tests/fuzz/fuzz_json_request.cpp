// Fuzzes the JSON request parsers of `ovis serve`: chat completions (messages, content parts,
// data: URL images, sampling fields) and image generations. Any input must end in a parsed
// request or an ApiError, never a crash.
#include <cstdint>
#include <string_view>

#include "serve/api_error.hpp"
#include "serve/chat_wire.hpp"
#include "serve/image_wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  ovis::serve::Limits limits;
  limits.max_pixels = 1 << 20;  // keeps decoded images small while fuzzing
  try {
    ovis::serve::parse_chat_completion(body, limits);
  } catch (const ovis::serve::ApiError&) {
  }
  try {
    ovis::serve::parse_generation_request(body, limits);
  } catch (const ovis::serve::ApiError&) {
  }
  return 0;
}
