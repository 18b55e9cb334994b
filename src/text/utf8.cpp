#include "text/utf8.hpp"

#include <cstdint>

namespace ovis::utf8 {

namespace {

// Length of the well-formed sequence at bytes[i], or 0 with `bad` set to the length of the
// maximal ill-formed prefix (Unicode §3.9 "maximal subpart", as Rust's Utf8Error::error_len).
size_t sequence_length(std::string_view s, size_t i, size_t& bad, char32_t& cp) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  bad = 0;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    bad = 1;
    return 0;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) {
      bad = k;
      return 0;
    }
    const auto b = static_cast<uint8_t>(s[i + k]);
    const uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) {
      bad = k;
      return 0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  return need + 1;
}

bool is_py_space(char32_t c) {
  // CPython's _PyUnicode_IsWhitespace: bidi class WS/B/S or category Zs.
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

}  // namespace

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

char32_t next(std::string_view s, size_t& i) {
  size_t bad;
  char32_t cp;
  const size_t n = sequence_length(s, i, bad, cp);
  if (!n) {  // not expected for valid input: consume the bad bytes as U+FFFD
    i += bad;
    return 0xFFFD;
  }
  i += n;
  return cp;
}

std::string lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t bad;
    char32_t cp;
    const size_t n = sequence_length(s, i, bad, cp);
    if (n) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      append(out, 0xFFFD);
      i += bad;
    }
  }
  return out;
}

bool is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t bad;
    char32_t cp;
    const size_t n = sequence_length(s, i, bad, cp);
    if (!n) return false;
    i += n;
  }
  return true;
}

std::string_view strip_py(std::string_view s) {
  // Decode code points from each end; the input is expected to be valid UTF-8 (invalid bytes
  // simply stop the stripping).
  size_t b = 0;
  while (b < s.size()) {
    size_t bad;
    char32_t cp;
    const size_t n = sequence_length(s, b, bad, cp);
    if (!n || !is_py_space(cp)) break;
    b += n;
  }
  size_t e = s.size();
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
    size_t bad;
    char32_t cp;
    const size_t n = sequence_length(s, start, bad, cp);
    if (n != e - start || !is_py_space(cp)) break;
    e = start;
  }
  return s.substr(b, e - b);
}

}  // namespace ovis::utf8
