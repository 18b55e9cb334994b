#include "text/pretokenizer.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.hpp"

namespace ovis {

const char* const kQwenPretokenizePattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string onig_to_pcre2(std::string_view p) {
  static constexpr std::string_view kSpaceItems = R"(\t-\r\x{85}\p{Z})";
  std::string out;
  out.reserve(p.size() + 64);
  int class_depth = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[++i];
      if (e == 's' && class_depth) {
        out.append(kSpaceItems);
      } else if (e == 's' || (e == 'S' && !class_depth)) {
        out.append(e == 's' ? "[" : "[^");
        out.append(kSpaceItems);
        out.append("]");
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[') {
      ++class_depth;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (c == ']' && class_depth) --class_depth;
    out += c;
  }
  return out;
}

namespace {

// Work limits for a pattern that comes from a tokenizer file. A pattern may be at most this long
// (the Qwen pattern is ~100 bytes) ...
constexpr size_t kMaxPatternBytes = 64 << 10;
// ... and one match may take at most this many backtracking steps (PCRE2's own default, stated
// here because it is what keeps a catastrophic pattern such as (a+)+$ from running for hours:
// the legitimate patterns need about one step per byte of the piece they match), this much
// interpreter heap, and, with the JIT, this much JIT stack.
constexpr uint32_t kMatchLimit = 10'000'000;
constexpr uint32_t kHeapLimitKiB = 64 << 10;
constexpr size_t kJitStackBytes = 8 << 20;

// One JIT stack per thread, made on first use and reused by every match on that thread (creating
// one maps kJitStackBytes, which cost more than the match itself for short texts).
pcre2_jit_stack* thread_jit_stack() {
  thread_local struct Holder {
    pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, kJitStackBytes, nullptr);
    ~Holder() { pcre2_jit_stack_free(stack); }
  } holder;
  return holder.stack;
}

}  // namespace

struct RegexSplitter::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
  std::string origin;
  ~Impl() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(const std::string& pattern, const std::string& origin)
    : impl_(std::make_unique<Impl>()) {
  impl_->origin = origin;
  if (pattern.size() > kMaxPatternBytes)
    fail(origin, ": pre_tokenizer regex of ", pattern.size(), " bytes exceeds the ",
         kMaxPatternBytes, "-byte limit");
  const std::string translated = onig_to_pcre2(pattern);
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  // PCRE2_UTF also validates the pattern's UTF-8; the default nesting limit (250 parentheses) and
  // the compiled-size limit bound the compile itself.
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                              PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    fail(origin, ": pre_tokenizer regex does not compile at offset ", err_offset, ": ",
         reinterpret_cast<const char*>(msg));
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

RegexSplitter::~RegexSplitter() = default;
RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;

void RegexSplitter::split(std::string_view text, std::vector<std::string_view>& out) const {
  // Per-call match data and a per-thread JIT stack keep split() safe to call from several
  // threads.
  struct Resources {
    pcre2_match_data* md = nullptr;
    pcre2_match_context* mc = nullptr;
    ~Resources() {
      pcre2_match_context_free(mc);
      pcre2_match_data_free(md);
    }
  } r;
  r.md = pcre2_match_data_create_from_pattern(impl_->code, nullptr);
  r.mc = pcre2_match_context_create(nullptr);
  if (!r.md || !r.mc) fail("pre-tokenizer: out of memory");
  pcre2_set_match_limit(r.mc, kMatchLimit);
  pcre2_set_heap_limit(r.mc, kHeapLimitKiB);
  if (impl_->jit) {
    pcre2_jit_stack* stack = thread_jit_stack();
    if (!stack) fail("pre-tokenizer: out of memory");
    pcre2_jit_stack_assign(r.mc, nullptr, stack);
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  const size_t n = text.size();
  size_t offset = 0, emitted = 0;
  while (offset < n) {
    const int rc = pcre2_match(impl_->code, subject, n, offset, PCRE2_NO_UTF_CHECK, r.md, r.mc);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      fail(impl_->origin,
           ": pre_tokenizer regex failed on the input: ", reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(r.md);
    const size_t start = ov[0], end = ov[1];
    if (end > start) {
      if (start > emitted) out.push_back(text.substr(emitted, start - emitted));
      out.push_back(text.substr(start, end - start));
      emitted = offset = end;
    } else {
      // Empty match: step over one code point.
      offset = start + 1;
      while (offset < n && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
    }
  }
  if (emitted < n) out.push_back(text.substr(emitted));
}

}  // namespace ovis
