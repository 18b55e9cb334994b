#include "serve/base64.hpp"

#include <algorithm>
#include <array>

namespace ovis::serve {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> make_decode_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = int8_t(i);
  return t;
}
constexpr std::array<int8_t, 256> kDecode = make_decode_table();

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

}  // namespace

std::string base64_encode(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < size) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (i + 1 < size) v |= uint32_t(data[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::vector<uint8_t>> base64_decode(std::string_view text, size_t max_bytes) {
  std::vector<uint8_t> out;
  out.reserve(std::min(text.size() / 4 * 3 + 3, max_bytes));
  uint32_t acc = 0;
  int have = 0;     // sextets in acc
  int padding = 0;  // '=' seen
  for (const char c : text) {
    if (is_space(c)) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    const int8_t v = kDecode[static_cast<unsigned char>(c)];
    if (v < 0 || padding > 0) return std::nullopt;  // bad character, or data after padding
    acc = acc << 6 | uint32_t(v);
    if (++have == 4) {
      if (out.size() + 3 > max_bytes) return std::nullopt;
      out.push_back(uint8_t(acc >> 16));
      out.push_back(uint8_t(acc >> 8));
      out.push_back(uint8_t(acc));
      acc = 0;
      have = 0;
    }
  }
  // Tail: 2 sextets -> 1 byte (padding "==" or none), 3 -> 2 bytes ("=" or none).
  if (have == 0) {
    if (padding != 0) return std::nullopt;
  } else if (have == 1) {
    return std::nullopt;
  } else {
    if (padding != 0 && padding != 4 - have) return std::nullopt;
    const int bytes = have - 1;
    if (out.size() + size_t(bytes) > max_bytes) return std::nullopt;
    acc <<= 6 * (4 - have);
    const uint32_t unused_mask = have == 2 ? 0xFFFFu : 0xFFu;
    if (acc & unused_mask) return std::nullopt;  // non-canonical trailing bits
    out.push_back(uint8_t(acc >> 16));
    if (bytes == 2) out.push_back(uint8_t(acc >> 8));
  }
  return out;
}

}  // namespace ovis::serve
