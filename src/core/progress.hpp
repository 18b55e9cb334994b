// Progress reporting: pipelines emit ProgressEvents through a callback; the CLI renders them
// as a bar on stderr (i/N, s/it, ETA), like sd-cli.
#pragma once
#include <functional>
#include <string>

namespace ovis {

struct ProgressEvent {
  std::string stage;  // "condition", "denoise", "vae decode", ...
  int step = 0;       // completed units, 0..total
  int total = 0;
  double elapsed_s = 0;  // since the stage started
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

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
