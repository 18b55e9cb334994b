// UTF-8 helpers shared by the tokenizer and the formatter.
#pragma once
#include <string>
#include <string_view>

namespace ovis::utf8 {

void append(std::string& out, char32_t cp);
// Code point at s[i] of valid UTF-8 `s`; advances i past it.
char32_t next(std::string_view s, size_t& i);

// Decodes `bytes` like Rust's String::from_utf8_lossy (what HF tokenizers' ByteLevel decoder
// returns): each maximal ill-formed subsequence becomes one U+FFFD.
std::string lossy(std::string_view bytes);
bool is_valid(std::string_view bytes);

// Python's str.strip(): removes leading/trailing characters for which str.isspace() is true.
std::string_view strip_py(std::string_view s);

}  // namespace ovis::utf8
