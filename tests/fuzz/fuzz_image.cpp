// Fuzz target: PNG/JPEG decode of arbitrary bytes. A decoded image must respect the limits and
// hold exactly width * height * 3 bytes.
//
// Decoding costs time in proportion to the pixels the header declares, whatever the file size:
// a 176-byte JPEG declaring 12780 x 2317 CMYK pixels (inside the 64 Mpx kMaxImagePixels) takes
// 0.3 s in a release build and 2.3 s of CPU under ASan + coverage, and passed libFuzzer's 10 s
// wall-clock timeout on a loaded machine (corpus/image/large-cmyk-jpeg.jpg). The target decodes
// under a 4 Mpx budget (decode_image's max_pixels, as the server passes its own) so that every
// input stays fast and mutation time goes to the parsers; the limit check is the same code for
// any budget.
#include <cstdint>
#include <cstdlib>

#include "core/error.hpp"
#include "ovis/image_io.hpp"

namespace {
constexpr int64_t kPixelBudget = int64_t(1) << 22;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ovis::Image img = ovis::decode_image(data, size, "fuzz-input", kPixelBudget);
    if (img.width < 1 || img.height < 1 || img.width > ovis::kMaxImageSide ||
        img.height > ovis::kMaxImageSide || int64_t(img.width) * img.height > kPixelBudget ||
        img.rgb.size() != size_t(img.width) * img.height * 3)
      std::abort();
  } catch (const ovis::Error&) {
  }
  return 0;
}
