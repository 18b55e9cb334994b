// Fuzz target: tokenizer.json load; a tokenizer that loads must also encode and decode.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.hpp"
#include "text/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const ovis::Tokenizer t = ovis::Tokenizer::from_json_text(text, "tokenizer.json");
    const std::vector<int32_t> ids = t.encode("Hello, world! <|im_end|> 123 \xc3\xa9\n  x");
    for (const int32_t id : ids)
      if (id < 0 || id >= t.vocab_size()) std::abort();  // encode returned an unknown id
    (void)t.decode(ids);
    (void)t.decode(ids, /*skip_special_tokens=*/true);
  } catch (const ovis::Error&) {
  }
  return 0;
}
