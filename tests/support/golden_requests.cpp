#include "support/golden_requests.hpp"

#include <cmath>

#include "io/image.hpp"
#include "support/golden.hpp"

namespace ovis::test {

GenerateRequest golden_t2i_request(const std::string& name) {
  const auto& c = manifest_case(name);
  GenerateRequest g;
  g.prompt = c["prompt"];
  g.width = c["width"];
  g.height = c["height"];
  g.steps = c["steps"];
  g.cfg_scale = c["txt_cfg"];
  g.init_noise = golden_host(name + ".noise");
  return g;
}

EditRequest golden_edit_request() {
  const auto& e = manifest_case("edit_128x160");
  EditRequest r;
  r.input = read_image(fixture_path("inputs/edit_128x160_input.png"));
  r.instruction = e["instruction"];
  r.steps = e["steps"];
  r.cfg_scale = e["txt_cfg"];
  r.img_cfg_scale = e["img_cfg"];
  r.init_noise = golden_host("edit_128x160.noise");
  return r;
}

double psnr(const Image& a, const Tensor& golden_u8) {
  double se = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    const double d = double(a.rgb[i]) - double(golden_u8.data<uint8_t>()[i]);
    se += d * d;
  }
  const double mse = se / double(a.rgb.size());
  return mse == 0 ? 99.0 : 10.0 * std::log10(255.0 * 255.0 / mse);
}

}  // namespace ovis::test
