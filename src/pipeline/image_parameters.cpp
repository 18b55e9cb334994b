// The "parameters" PNG text chunk (A1111 / sd-cli format) written with every generated image.
#include <filesystem>
#include <sstream>

#include "ovis/ovis.hpp"

namespace ovis {

namespace {

std::string format_float(float v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// The last component of the model folder's path ("a/b/" names "b").
std::string folder_name(const std::string& dir) {
  std::filesystem::path p(dir);
  if (!p.has_filename()) p = p.parent_path();
  return p.filename().string();
}

}  // namespace

std::string parameters_text(const ImageParameters& p) {
  std::ostringstream os;
  os << p.prompt << "\nSteps: " << p.steps
     << ", Sampler: Euler (flow matching), CFG scale: " << format_float(p.cfg_scale);
  if (p.img_cfg_scale) os << ", Image CFG scale: " << format_float(*p.img_cfg_scale);
  os << ", Seed: " << p.seed << ", Size: " << p.width << "x" << p.height
     << ", Model: " << folder_name(p.model_dir) << ", Version: ovis.cpp 0.1.0";
  return os.str();
}

}  // namespace ovis
