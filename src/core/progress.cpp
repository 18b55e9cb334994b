#include "core/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace ovis {

ProgressBar::ProgressBar(bool enabled, std::FILE* out)
    : enabled_(enabled), tty_(isatty(fileno(out)) != 0), out_(out) {}

void ProgressBar::operator()(const ProgressEvent& e) {
  if (!enabled_ || e.total <= 0) return;
  const bool done = e.step >= e.total;
  // Without a terminal, print only the first and last line of a stage.
  if (!tty_ && e.step != 0 && !done) return;
  constexpr int kWidth = 30;
  const int filled = e.total ? e.step * kWidth / e.total : 0;
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
  bar[kWidth] = 0;
  const double per_it = e.step > 0 ? e.elapsed_s / e.step : 0.0;
  const double eta = per_it * (e.total - e.step);
  std::fprintf(out_, "%s%-12s |%s| %d/%d", tty_ ? "\r" : "", e.stage.c_str(), bar, e.step, e.total);
  if (e.step > 0) {
    if (per_it >= 1.0 || per_it == 0.0)
      std::fprintf(out_, " %.2f s/%s", per_it, e.unit.c_str());
    else
      std::fprintf(out_, " %.2f %s/s", 1.0 / per_it, e.unit.c_str());
    std::fprintf(out_, done ? " %.1fs total" : " ETA %.0fs", done ? e.elapsed_s : eta);
  }
  std::fprintf(out_, "%s", (done || !tty_) ? "\n" : "\x1b[K");
  std::fflush(out_);
  last_stage_ = e.stage;
}

}  // namespace ovis
