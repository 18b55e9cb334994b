#include "serve/request_body.hpp"

#include <cerrno>
#include <cstdlib>

#include "serve/api_error.hpp"

namespace ovis::serve {

namespace {

// Past this many bytes an oversized body is no longer drained: the connection is given up.
constexpr size_t kDrainCap = size_t(1) << 30;

ApiError too_large(const Limits& limits) {
  return ApiError(413, "invalid_request_error", "request_too_large",
                  "the request body exceeds the limit of " + std::to_string(limits.max_body_bytes) +
                      " bytes (--max-body-mb)");
}

bool declared_too_large(const httplib::Request& req, const Limits& limits) {
  const std::string len = req.get_header_value("Content-Length");
  if (len.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long n = std::strtoull(len.c_str(), &end, 10);
  return errno == ERANGE || n > limits.max_body_bytes;
}

bool is_multipart(const httplib::Request& req) {
  std::string ct = req.get_header_value("Content-Type");
  for (char& c : ct) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ct.rfind("multipart/form-data", 0) == 0;
}

}  // namespace

std::string read_json_body(const httplib::Request& req, const httplib::ContentReader& reader,
                           const Limits& limits) {
  // cpp-httplib parses multipart bodies itself and has no plain reader for them.
  if (is_multipart(req) || req.is_multipart_form_data())
    throw ApiError(415, "invalid_request_error", "unsupported_media_type",
                   "this endpoint takes a JSON body (Content-Type: application/json)");
  // Refused before reading: the response closes the connection instead of draining the body.
  if (declared_too_large(req, limits)) throw too_large(limits);
  std::string body;
  size_t seen = 0;
  const bool ok = reader([&](const char* data, size_t n) {
    seen += n;
    if (seen > limits.max_body_bytes) return seen <= kDrainCap;
    body.append(data, n);
    return true;
  });
  if (seen > limits.max_body_bytes) throw too_large(limits);
  if (!ok) throw invalid_request("", "the request body could not be read", "invalid_body");
  return body;
}

FormFields read_form_body(const httplib::Request& req, const httplib::ContentReader& reader,
                          const Limits& limits) {
  if (!req.is_multipart_form_data())
    throw ApiError(415, "invalid_request_error", "unsupported_media_type",
                   "this endpoint takes multipart/form-data (fields image, prompt, ...)");
  if (declared_too_large(req, limits)) throw too_large(limits);
  FormFields fields;
  FormFields::iterator current = fields.end();
  size_t seen = 0, parts = 0;
  std::string refused;     // first unknown field name
  bool oversized = false;  // a text field over kMaxFormTextBytes, or too many parts
  const bool ok = reader(
      [&](const httplib::MultipartFormData& part) {
        current = fields.end();
        if (++parts > 64) {
          oversized = true;
        } else if (!is_edit_form_field(part.name)) {
          if (refused.empty()) refused = part.name.substr(0, 64);
        } else {
          current = fields.emplace(part.name, FormField{"", part.filename, part.content_type});
        }
        return true;
      },
      [&](const char* data, size_t n) {
        seen += n;
        if (seen > limits.max_body_bytes) return seen <= kDrainCap;
        if (current == fields.end()) return true;  // dropped part
        FormField& f = current->second;
        if (f.filename.empty() && f.content.size() + n > kMaxFormTextBytes) {
          oversized = true;
          return true;
        }
        f.content.append(data, n);
        return true;
      });
  if (seen > limits.max_body_bytes) throw too_large(limits);
  if (!ok)
    throw invalid_request("", "the multipart/form-data body is malformed", "invalid_multipart");
  if (oversized)
    throw ApiError(413, "invalid_request_error", "field_too_large",
                   "a text field exceeds " + std::to_string(kMaxFormTextBytes) +
                       " bytes, or the form has more than 64 parts");
  if (!refused.empty())
    throw invalid_request(refused, "unknown form field '" + refused + "'", "unknown_parameter");
  return fields;
}

}  // namespace ovis::serve
