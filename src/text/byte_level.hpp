// GPT-2's reversible byte <-> unicode mapping used by byte-level BPE (spec §3.1): every byte is
// shown as a printable code point so that BPE tokens are valid strings.
#pragma once
#include <array>
#include <string>

namespace ovis::byte_level {

// Code point that stands for byte b.
char32_t char_of_byte(unsigned char b);
// UTF-8 text of char_of_byte(b).
const std::string& utf8_of_byte(unsigned char b);
// Byte that code point c stands for, or -1 when c is not one of the 256 mapped code points.
int byte_of_char(char32_t c);

}  // namespace ovis::byte_level
