#include "text/bpe.hpp"

#include <queue>

#include "core/error.hpp"
#include "text/byte_level.hpp"

namespace ovis {

namespace {

constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 100000;

}  // namespace

ByteLevelBpe::ByteLevelBpe(const std::unordered_map<std::string_view, int32_t>& ids,
                           const std::vector<std::pair<std::string_view, std::string_view>>& merges,
                           bool ignore_merges, const std::string& origin)
    : ignore_merges_(ignore_merges) {
  auto find = [&](std::string_view t) {
    auto it = ids.find(t);
    return it == ids.end() ? -1 : it->second;
  };

  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = find(byte_level::utf8_of_byte(static_cast<unsigned char>(b)));
    if (byte_ids_[b] < 0) fail(origin, ": model.vocab lacks the byte-level symbol for byte ", b);
  }

  merges_.reserve(merges.size() * 2);
  std::string joined;
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto& [a, b] = merges[r];
    const int32_t ia = find(a), ib = find(b);
    joined.assign(a);
    joined.append(b);
    const int32_t ij = find(joined);
    if (ia < 0 || ib < 0 || ij < 0)
      fail(origin, ": model.merges[", r, "] uses a token that is not in model.vocab");
    // Later duplicates win, as in HF's merge map construction.
    merges_.insert_or_assign(pair_key(ia, ib), Merge{int32_t(r), ij});
  }

  if (ignore_merges_)
    for (const auto& [t, id] : ids) whole_words_.emplace(std::string(t), id);
}

void ByteLevelBpe::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    std::string mapped;
    for (const char c : word) mapped += byte_level::utf8_of_byte(static_cast<unsigned char>(c));
    auto it = whole_words_.find(mapped);
    if (it != whole_words_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_symbols(word, out);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

void ByteLevelBpe::merge_symbols(std::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool alive;
  };
  struct Candidate {
    int32_t rank, pos, id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int32_t n = int32_t(word.size());
  std::vector<Symbol> sym(n);
  for (int32_t i = 0; i < n; ++i)
    sym[i] = {byte_ids_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};

  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push_pair = [&](int32_t left) {
    const int32_t right = sym[left].next;
    if (right < 0) return;
    auto it = merges_.find(pair_key(sym[left].id, sym[right].id));
    if (it != merges_.end()) heap.push({it->second.rank, left, it->second.id});
  };
  for (int32_t i = 0; i + 1 < n; ++i) push_pair(i);

  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = sym[c.pos];
    if (!left.alive || left.next < 0) continue;
    // Stale candidate: one of the two symbols has changed since it was queued.
    auto it = merges_.find(pair_key(left.id, sym[left.next].id));
    if (it == merges_.end() || it->second.id != c.id) continue;
    Symbol& right = sym[left.next];
    left.id = c.id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) sym[left.next].prev = c.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(c.pos);
  }
  for (int32_t i = 0; i >= 0 && i < n; i = sym[i].next) out.push_back(sym[i].id);
}

}  // namespace ovis
