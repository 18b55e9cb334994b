#include "text/byte_level.hpp"

#include "text/utf8.hpp"

namespace ovis::byte_level {

namespace {

struct Tables {
  std::array<char32_t, 256> chars{};
  std::array<std::string, 256> utf8;
  std::array<int, 512> bytes{};  // mapped code points are all < 512

  Tables() {
    bytes.fill(-1);
    // Printable Latin-1 bytes keep their own code point; the others (controls, space, DEL,
    // NBSP, soft hyphen, ...) get 256, 257, ... in byte order.
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      chars[b] = printable ? char32_t(b) : next++;
      utf8::append(utf8[b], chars[b]);
      bytes[chars[b]] = b;
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t char_of_byte(unsigned char b) {
  return tables().chars[b];
}
const std::string& utf8_of_byte(unsigned char b) {
  return tables().utf8[b];
}
int byte_of_char(char32_t c) {
  return c < 512 ? tables().bytes[c] : -1;
}

}  // namespace ovis::byte_level
