// Byte-level BPE (HF tokenizers `BPE` model with GPT-2 byte mapping, spec §3.1): a pre-token's
// bytes start as one symbol per byte and are merged pairwise, lowest merge rank first (leftmost
// on ties), until no adjacent pair has a merge.
#pragma once
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ovis {

class ByteLevelBpe {
 public:
  // `vocab` maps the model's token texts (byte-level alphabet) to ids; `merges` are pairs of
  // token texts in rank order. Throws ovis::Error prefixed with `origin` when a merge or a byte
  // symbol is not in the vocabulary.
  ByteLevelBpe(const std::unordered_map<std::string_view, int32_t>& vocab,
               const std::vector<std::pair<std::string_view, std::string_view>>& merges,
               bool ignore_merges, const std::string& origin);

  // Appends the ids of one pre-token, given as raw bytes (before the byte-level mapping).
  // Thread-safe (the per-word cache is guarded by a mutex).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  }
  void merge_symbols(std::string_view word, std::vector<int32_t>& out) const;

  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;
  std::unordered_map<std::string, int32_t>
      whole_words_;  // token text -> id, only with ignore_merges
  bool ignore_merges_ = false;

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace ovis
