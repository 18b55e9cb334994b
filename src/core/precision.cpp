// Names of the public Precision values (ovis/types.hpp).
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

}  // namespace ovis
