// The "parameters" PNG text chunk (A1111 / sd-cli format) written with every generated image.
#include <sstream>

#include "ovis/ovis.hpp"

namespace ovis {

namespace {

std::string format_float(float v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace

std::string parameters_text(const ImageParameters& p) {
  std::ostringstream os;
  os << p.prompt << "\nSteps: " << p.steps
     << ", Sampler: Euler (flow matching), CFG scale: " << format_float(p.cfg_scale);
  if (p.img_cfg_scale) os << ", Image CFG scale: " << format_float(*p.img_cfg_scale);
  os << ", Seed: " << p.seed;
  if (!p.rng.empty() && p.rng != "philox") os << ", RNG: " << p.rng;
  os << ", Size: " << p.width << "x" << p.height << ", Model: " << p.model
     << ", Version: ovis.cpp 0.1.0";
  return os.str();
}

}  // namespace ovis
