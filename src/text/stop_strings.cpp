#include "text/stop_strings.hpp"

#include <algorithm>

namespace ovis {

StopScan scan_stop_strings(std::string_view text, const std::vector<std::string>& stops) {
  StopScan scan;
  size_t first = std::string_view::npos;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    first = std::min(first, text.find(s));
  }
  if (first != std::string_view::npos) {
    scan.stopped = true;
    scan.safe_length = first;
    return scan;
  }
  // Longest suffix of `text` that is a proper prefix of a stop string.
  size_t held = 0;
  for (const std::string& s : stops) {
    if (s.size() < 2) continue;
    for (size_t n = std::min(s.size() - 1, text.size()); n > held; --n) {
      if (text.substr(text.size() - n) == std::string_view(s).substr(0, n)) {
        held = n;
        break;
      }
    }
  }
  scan.safe_length = text.size() - held;
  return scan;
}

}  // namespace ovis
