// Progress reporting: pipelines emit ProgressEvents through a callback; the CLI renders them
// as a bar on stderr (i/N, s/it, ETA), like sd-cli.
#pragma once
#include <functional>
#include <string>

#include "ovis/types.hpp"

namespace ovis {

// Renders events as one updating line per stage on a stream (stderr by default).
class ProgressBar {
 public:
  explicit ProgressBar(bool enabled = true, std::FILE* out = stderr);
  void operator()(const ProgressEvent& e);

 private:
  bool enabled_;
  bool tty_;
  std::FILE* out_;
  std::string last_stage_;
};

}  // namespace ovis
