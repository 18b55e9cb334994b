#include "text/added_tokens.hpp"

namespace ovis {

void AddedTokenMatcher::add(std::string_view content, int32_t id) {
  if (content.empty()) return;
  uint32_t node = 0;
  for (const char c : content) {
    auto [it, inserted] =
        next_.try_emplace(edge(node, static_cast<unsigned char>(c)), uint32_t(ids_.size()));
    if (inserted) ids_.push_back(-1);
    node = it->second;
  }
  if (ids_[node] < 0) {
    ids_[node] = id;
    ++count_;
  }
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Piece>& out) const {
  size_t plain_start = 0;
  for (size_t i = 0; i < text.size();) {
    // Longest token starting at i: walk the trie as far as the text follows it.
    size_t best_len = 0;
    int32_t best_id = -1;
    uint32_t node = 0;
    for (size_t k = i; k < text.size(); ++k) {
      auto it = next_.find(edge(node, static_cast<unsigned char>(text[k])));
      if (it == next_.end()) break;
      node = it->second;
      if (ids_[node] >= 0) {
        best_len = k + 1 - i;
        best_id = ids_[node];
      }
    }
    if (best_id < 0) {
      ++i;
      continue;
    }
    if (i > plain_start) out.push_back({text.substr(plain_start, i - plain_start), -1});
    out.push_back({text.substr(i, best_len), best_id});
    i += best_len;
    plain_start = i;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace ovis
