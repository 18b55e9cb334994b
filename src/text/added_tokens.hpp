// Atomic matching of tokenizer.json's added tokens in raw text (spec §3.1,
// `split_special_tokens=false`): at the leftmost position where any added token starts, the
// longest one wins (HF's AddedVocabulary, aho-corasick LeftmostLongest).
// The tokens live in a byte trie, so adding n tokens costs their total length and matching costs
// at most the longest token per text position, whatever a tokenizer file holds.
#pragma once
#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ovis {

class AddedTokenMatcher {
 public:
  // Empty contents are ignored; a content added twice keeps its first id.
  void add(std::string_view content, int32_t id);
  bool empty() const { return count_ == 0; }

  // One piece of the split: a matched token (id >= 0) or a stretch of plain text (id == -1).
  struct Piece {
    std::string_view text;
    int32_t id;
  };
  // Pieces covering `text` in order; plain stretches are never empty.
  void split(std::string_view text, std::vector<Piece>& out) const;

 private:
  static uint64_t edge(uint32_t node, unsigned char byte) { return (uint64_t(node) << 8) | byte; }
  // Node 0 is the root; ids_[n] is the token ending at node n, or -1.
  std::vector<int32_t> ids_{-1};
  std::unordered_map<uint64_t, uint32_t> next_;  // edge(node, byte) -> child node
  size_t count_ = 0;
};

}  // namespace ovis
