#include "serve/data_url.hpp"

#include <algorithm>
#include <cctype>

#include "ovis/image_io.hpp"
#include "serve/api_error.hpp"
#include "serve/base64.hpp"

namespace ovis::serve {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

}  // namespace

DataUrl parse_data_url(std::string_view url, const std::string& param, size_t max_bytes) {
  url = trim(url);
  if (starts_with_ci(url, "http://") || starts_with_ci(url, "https://"))
    throw invalid_request(param,
                          "remote image URLs are not fetched by this server; send the image "
                          "inline as a data: URL (data:image/png;base64,...)",
                          "remote_url_not_allowed");
  if (!starts_with_ci(url, "data:"))
    throw invalid_request(param, "image_url must be a data: URL (data:image/png;base64,...)",
                          "invalid_image_url");
  url.remove_prefix(5);
  const size_t comma = url.find(',');
  if (comma == std::string_view::npos)
    throw invalid_request(param, "data: URL has no ',' before its payload", "invalid_image_url");
  const std::string_view header = url.substr(0, comma);
  const std::string_view payload = url.substr(comma + 1);
  // header = media type, then ";"-separated parameters; the last one must be "base64".
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    const size_t semi = header.find(';', start);
    fields.push_back(
        trim(header.substr(start, semi == std::string_view::npos ? semi : semi - start)));
    if (semi == std::string_view::npos) break;
    start = semi + 1;
  }
  if (fields.size() < 2 || lower(fields.back()) != "base64")
    throw invalid_request(param, "data: URL must be base64-encoded (data:image/png;base64,...)",
                          "invalid_image_url");
  DataUrl out;
  out.media_type = lower(fields.front());
  if (out.media_type.rfind("image/", 0) != 0)
    throw invalid_request(param,
                          "data: URL media type must be image/png or image/jpeg, got '" +
                              out.media_type.substr(0, 64) + "'",
                          "invalid_image_url");
  auto bytes = base64_decode(payload, max_bytes);
  if (!bytes)
    throw invalid_request(param, "data: URL payload is not valid base64 (or is too large)",
                          "invalid_base64");
  out.bytes = std::move(*bytes);
  return out;
}

Image decode_request_image(const uint8_t* data, size_t size, const std::string& param,
                           int64_t& pixel_budget) {
  Image img;
  try {
    img = decode_image(data, size, param, std::max<int64_t>(pixel_budget, 0));
  } catch (const Error& e) {
    throw invalid_request(param, e.what(), "invalid_image");
  }
  pixel_budget -= int64_t(img.width) * img.height;
  return img;
}

}  // namespace ovis::serve
