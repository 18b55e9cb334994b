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

ImageParameters parameters_of(const std::string& prompt, int steps, float cfg_scale, uint64_t seed,
                              NoiseRng rng, const ImageResult& result, const std::string& model) {
  ImageParameters p;
  p.prompt = prompt;
  p.steps = steps;
  p.cfg_scale = cfg_scale;
  p.seed = seed;
  p.rng = noise_rng_name(rng);
  p.width = result.width;
  p.height = result.height;
  p.model = model;
  return p;
}

}  // namespace

ImageParameters image_parameters(const GenerateRequest& req, const ImageResult& result,
                                 const std::string& model) {
  return parameters_of(req.prompt, req.steps, req.cfg_scale, req.seed, req.rng, result, model);
}

ImageParameters image_parameters(const EditRequest& req, const ImageResult& result,
                                 const std::string& model) {
  ImageParameters p =
      parameters_of(req.instruction, req.steps, req.cfg_scale, req.seed, req.rng, result, model);
  p.img_cfg_scale = req.img_cfg_scale;
  return p;
}

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
