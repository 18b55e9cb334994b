// The regex pre-tokenizer of spec §3.1: HF `Split(pattern, behavior=Isolated)`. The pattern is
// written for Oniguruma (what HF tokenizers uses); it is run with PCRE2 (UTF + UCP, JIT when
// available) after rewriting the one construct whose meaning differs (see onig_to_pcre2).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ovis {

// The Qwen2/Qwen3 pattern, used when tokenizer.json carries no Split regex (spec §3.1).
extern const char* const kQwenPretokenizePattern;

// Rewrites \s and \S to Oniguruma's Unicode meaning (White_Space: \t-\r, U+0085 and category Z).
// PCRE2's UCP \s also matches U+180E, which left White_Space in Unicode 6.3.
std::string onig_to_pcre2(std::string_view pattern);

// The pattern comes from a tokenizer file, so its length and the work of each match are limited
// (a catastrophic pattern fails with an error instead of running for hours).
class RegexSplitter {
 public:
  // Throws ovis::Error (prefixed with `origin`) when the pattern is too long or does not compile;
  // split() throws (naming `origin`) when a match exceeds the work limits.
  RegexSplitter(const std::string& oniguruma_pattern, const std::string& origin);
  ~RegexSplitter();
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;

  // Appends to `out` the pieces of valid UTF-8 `text`, in order, covering it exactly: every
  // match, and every stretch between matches (behavior Isolated). Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ovis
