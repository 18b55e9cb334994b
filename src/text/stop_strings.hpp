// Stop strings over a growing decoded text: where the text must end, and how much of it is
// already safe to show while generation continues.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace ovis {

struct StopScan {
  bool stopped = false;  // a stop string occurs in the text
  // stopped: the text ends here (the first occurrence of any stop string). Otherwise the length
  // of the prefix that no stop string can still reach: a suffix that begins some stop string is
  // held back until later text decides it.
  size_t safe_length = 0;
};

StopScan scan_stop_strings(std::string_view text, const std::vector<std::string>& stops);

}  // namespace ovis
