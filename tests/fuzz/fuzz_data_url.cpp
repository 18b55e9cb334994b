// Fuzzes data: URL parsing, strict base64 decoding and the image decode behind them (PNG and
// JPEG headers, the pixel budget). Any input must end in an image or an ApiError.
#include <cstdint>
#include <string_view>

#include "serve/api_error.hpp"
#include "serve/base64.hpp"
#include "serve/data_url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view url(reinterpret_cast<const char*>(data), size);
  try {
    const ovis::serve::DataUrl d = ovis::serve::parse_data_url(url, "image_url", 1 << 20);
    int64_t budget = 1 << 20;
    ovis::serve::decode_request_image(d.bytes.data(), d.bytes.size(), "image_url", budget);
  } catch (const ovis::serve::ApiError&) {
  }
  // Round trip: whatever decodes re-encodes to the same bytes.
  if (auto bytes = ovis::serve::base64_decode(url, 1 << 20)) {
    if (ovis::serve::base64_decode(ovis::serve::base64_encode(*bytes)) != bytes) __builtin_trap();
  }
  return 0;
}
