// Fuzz target: PNG/JPEG decode of arbitrary bytes. A decoded image must respect the documented
// limits (ovis/image_io.hpp) and hold exactly width * height * 3 bytes.
#include <cstdint>
#include <cstdlib>

#include "core/error.hpp"
#include "ovis/image_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ovis::Image img = ovis::decode_image(data, size, "fuzz-input");
    if (img.width < 1 || img.height < 1 || img.width > ovis::kMaxImageSide ||
        img.height > ovis::kMaxImageSide ||
        int64_t(img.width) * img.height > ovis::kMaxImagePixels ||
        img.rgb.size() != size_t(img.width) * img.height * 3)
      std::abort();
  } catch (const ovis::Error&) {
  }
  return 0;
}
