// Turns the growing list of generated token ids into text for a streaming callback: only
// complete UTF-8 is emitted, and nothing at or after a stop string.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.hpp"

namespace ovis {

class TextStreamer {
 public:
  TextStreamer(const Tokenizer& tok, std::vector<std::string> stop,
               std::function<bool(std::string_view)> sink);

  // Decodes `ids` (all tokens so far) and sends the newly decided text to the sink. `final`
  // flushes everything held back. Returns false when generation should end: a stop string
  // appeared or the sink returned false.
  bool push(const std::vector<int32_t>& ids, bool final);

  // The answer so far: the decoded text, cut at the first stop string once one has appeared.
  const std::string& text() const { return text_; }
  bool stopped() const { return stopped_; }

 private:
  const Tokenizer& tok_;
  std::vector<std::string> stop_;
  std::function<bool(std::string_view)> sink_;
  std::string text_;
  size_t emitted_ = 0;
  bool stopped_ = false;
};

}  // namespace ovis
