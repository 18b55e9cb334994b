// Names of the public Precision and NoiseRng values (ovis/types.hpp).
#include "core/error.hpp"
#include "ovis/types.hpp"

namespace ovis {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::F32:
      return "f32";
    case Precision::BF16:
      return "bf16";
    default:
      return "auto";
  }
}

Precision parse_precision(const std::string& s, const std::string& what) {
  if (s == "f32") return Precision::F32;
  if (s == "bf16") return Precision::BF16;
  if (s == "auto") return Precision::Auto;
  fail(what, " must be f32, bf16 or auto (got '", s, "')");
}

const char* noise_rng_name(NoiseRng r) {
  return r == NoiseRng::TorchCuda ? "torch-cuda" : "philox";
}

NoiseRng parse_noise_rng(const std::string& s, const std::string& what) {
  if (s == "philox") return NoiseRng::Philox;
  if (s == "torch-cuda") return NoiseRng::TorchCuda;
  fail(what, " must be philox or torch-cuda (got '", s, "')");
}

}  // namespace ovis
