// Standard base64 (RFC 4648 §4) for image payloads: strict decoding, so broken input is an
// error instead of silently different bytes.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ovis::serve {

std::string base64_encode(const uint8_t* data, size_t size);
inline std::string base64_encode(const std::vector<uint8_t>& v) {
  return base64_encode(v.data(), v.size());
}

// Decodes the standard alphabet with '=' padding (optional when the length is not a multiple of
// 4). ASCII whitespace is skipped (line-wrapped input). Anything else — a character outside the
// alphabet, misplaced padding, a dangling single character, non-zero trailing bits — gives
// nullopt. Decoding stops with nullopt once the output would exceed `max_bytes`.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text,
                                                  size_t max_bytes = SIZE_MAX);

}  // namespace ovis::serve
