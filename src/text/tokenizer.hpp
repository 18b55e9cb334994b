// The Qwen2/Qwen3 tokenizer of spec §3.1, loaded from an HF `tokenizer.json`: added tokens
// matched atomically in the raw text, NFC, the regex pre-tokenizer, byte-level BPE; decoding by
// the ByteLevel decoder. Behaves like HF tokenizers' encode(text, add_special_tokens=False) and
// decode(ids, skip_special_tokens).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ovis {

struct AddedTokenInfo {
  int32_t id;
  std::string content;
  bool special;  // skipped by decode(..., skip_special_tokens=true)
};

class Tokenizer {
 public:
  // `<dir>/tokenizer.json` of a checkpoint folder.
  static Tokenizer from_dir(const std::string& dir);
  // Throws one-line ovis::Error naming the file when it is missing, malformed, or describes a
  // tokenizer this class does not implement.
  // The file is untrusted: its size and JSON nesting are limited, ids must be justified by the
  // number of tokens it holds, and every error names the field.
  static Tokenizer from_file(const std::string& path);
  // The same from the file's text; `origin` names it in errors.
  static Tokenizer from_json_text(std::string_view text, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids of `text`; no special tokens are added. Invalid UTF-8 bytes in `text` are read as
  // U+FFFD. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;

  // Text of `ids`: the byte-level bytes of every token, as UTF-8 with each ill-formed sequence
  // replaced by U+FFFD. Ids that name no token (negative, out of range) are skipped, as HF does.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // The same bytes before the UTF-8 repair (for streaming output, which must hold back an
  // incomplete trailing character).
  std::string decode_bytes(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // Id of a token's text in the vocabulary or added tokens ("<|im_end|>", "Ġworld").
  std::optional<int32_t> find_id(std::string_view token) const;
  // As find_id, but throws ovis::Error when the token does not exist.
  int32_t id_of(std::string_view token) const;
  // Token text of `id` (byte-level alphabet for vocabulary tokens); throws when unknown.
  const std::string& token_of(int32_t id) const;
  bool is_special(int32_t id) const;
  // Vocabulary plus added tokens: one past the largest id (151669 for Qwen3).
  int32_t vocab_size() const;
  const std::vector<AddedTokenInfo>& added_tokens() const;
  // The file this tokenizer was loaded from.
  const std::string& path() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ovis
