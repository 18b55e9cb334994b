// Fuzz target: encode and decode arbitrary bytes with the Qwen3 tokenizer of the tiny fixture
// (the real vocabulary, merges, added tokens and pre-tokenizer regex). Checks, besides memory
// safety: ids are in range, and ASCII text survives encode + decode unchanged (byte-level BPE is
// lossless and NFC leaves ASCII alone). The input's bytes also serve as arbitrary ids to decode.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "text/tokenizer.hpp"

namespace {

const ovis::Tokenizer& tokenizer() {
  static const ovis::Tokenizer t = [] {
    const char* dir = std::getenv("OVIS_FIXTURE_DIR");
    return ovis::Tokenizer::from_dir(dir ? dir : OVIS_FIXTURE_DIR);
  }();
  return t;
}

}  // namespace

// Loads the tokenizer before fuzzing starts (an 11 MB load would count against -timeout).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const ovis::Tokenizer& t = tokenizer();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::vector<int32_t> ids = t.encode(text);
    for (const int32_t id : ids)
      if (id < 0 || id >= t.vocab_size()) std::abort();
    const std::string back = t.decode(ids);
    bool ascii = true;
    for (const char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
    if (ascii && back != text) std::abort();  // lossless round trip broken
    (void)t.decode(ids, /*skip_special_tokens=*/true);
  } catch (const ovis::Error&) {
    // Only the regex work limit may refuse text.
  }
  std::vector<int32_t> raw(size / 4);
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * 4);
  (void)t.decode_bytes(raw);
  (void)t.decode(raw, /*skip_special_tokens=*/true);
  return 0;
}
