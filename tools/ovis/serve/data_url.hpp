// Images inside requests: "data:" URLs (RFC 2397, base64 only) and their decoding under the
// request's pixel budget. The server fetches nothing: http(s) URLs are refused.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ovis/types.hpp"
#include "serve/limits.hpp"

namespace ovis::serve {

struct DataUrl {
  std::string media_type;  // lower case, without parameters, e.g. "image/png"
  std::vector<uint8_t> bytes;
};

// Parses "data:<media type>[;param=value]...;base64,<payload>". Throws ApiError 400 naming
// `param` for remote URLs, other schemes, a missing ";base64", a non-image media type, broken
// base64, or a payload over `max_bytes`.
DataUrl parse_data_url(std::string_view url, const std::string& param, size_t max_bytes);

// Decodes PNG or JPEG bytes, charging the image's pixels to `pixel_budget` (the request's
// remaining allowance, Limits::max_pixels) before the pixels are allocated. Throws ApiError 400
// naming `param` on undecodable or oversized images.
Image decode_request_image(const uint8_t* data, size_t size, const std::string& param,
                           int64_t& pixel_budget);

}  // namespace ovis::serve
