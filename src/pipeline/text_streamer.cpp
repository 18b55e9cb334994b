#include "pipeline/text_streamer.hpp"

#include <algorithm>

#include "text/stop_strings.hpp"

namespace ovis {

namespace {

// U+FFFD at the end of the decoded text: a byte sequence a later token may complete.
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

}  // namespace

TextStreamer::TextStreamer(const Tokenizer& tok, std::vector<std::string> stop,
                           std::function<bool(std::string_view)> sink)
    : tok_(tok), stop_(std::move(stop)), sink_(std::move(sink)) {}

bool TextStreamer::push(const std::vector<int32_t>& ids, bool final) {
  if (stopped_) return false;
  text_ = tok_.decode(ids, /*skip_special_tokens=*/true);
  size_t ready = text_.size();
  if (!final && ready >= kReplacement.size() &&
      std::string_view(text_).substr(ready - kReplacement.size()) == kReplacement)
    ready -= kReplacement.size();
  const StopScan scan = scan_stop_strings(text_, stop_);
  if (scan.stopped) {
    stopped_ = true;
    text_.resize(scan.safe_length);
    ready = scan.safe_length;
  } else if (!final) {
    ready = std::min(ready, scan.safe_length);
  }
  bool keep_going = !stopped_;
  if (ready > emitted_ && sink_ &&
      !sink_(std::string_view(text_).substr(emitted_, ready - emitted_)))
    keep_going = false;
  emitted_ = std::max(emitted_, ready);
  return keep_going;
}

}  // namespace ovis
