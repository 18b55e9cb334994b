// Reading request bodies off the wire with bounded memory. A Content-Length over the limit is
// refused before reading (the 413 closes the connection); a chunked body that grows over it is
// read to its end and dropped (up to a hard cap), so a keep-alive connection stays in step with
// its client.
#pragma once
#include <httplib.h>

#include <string>

#include "serve/image_wire.hpp"
#include "serve/limits.hpp"

namespace ovis::serve {

// A JSON (non-multipart) body. Throws ApiError: 413 over limits.max_body_bytes, 415 for a
// multipart body, 400 for a broken transfer.
std::string read_json_body(const httplib::Request& req, const httplib::ContentReader& reader,
                           const Limits& limits);

// A multipart/form-data body through cpp-httplib's streaming parser: text fields up to
// kMaxFormTextBytes, files up to the body limit, only the edit form's field names. Throws
// ApiError: 413 too large, 415 not multipart, 400 malformed or unknown fields.
FormFields read_form_body(const httplib::Request& req, const httplib::ContentReader& reader,
                          const Limits& limits);

}  // namespace ovis::serve
