// Atomic matching of tokenizer.json's added tokens in raw text (spec §3.1,
// `split_special_tokens=false`): at the leftmost position where any added token starts, the
// longest one wins (HF's AddedVocabulary, aho-corasick LeftmostLongest).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ovis {

class AddedTokenMatcher {
 public:
  void add(std::string content, int32_t id);
  bool empty() const { return tokens_.empty(); }

  // One piece of the split: a matched token (id >= 0) or a stretch of plain text (id == -1).
  struct Piece {
    std::string_view text;
    int32_t id;
  };
  // Pieces covering `text` in order; plain stretches are never empty.
  void split(std::string_view text, std::vector<Piece>& out) const;

 private:
  struct Token {
    std::string content;
    int32_t id;
  };
  std::vector<Token> tokens_;
  // Per first byte: indices into tokens_, longest content first.
  std::array<std::vector<uint32_t>, 256> by_first_byte_;
};

}  // namespace ovis
