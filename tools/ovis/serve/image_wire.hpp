// POST /v1/images/generations (JSON) and /v1/images/edits (multipart form fields) in the OpenAI
// wire format, as one job description; and the response objects.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovis/image_io.hpp"
#include "ovis/ovis.hpp"
#include "serve/json_fields.hpp"
#include "serve/limits.hpp"

namespace ovis::serve {

struct ImageJobRequest {
  bool edit = false;
  std::string prompt;
  int n = 1;
  int width = 1024, height = 1024;  // generation only (edits keep the input's size)
  Image input;                      // edit only
  int steps = 50;
  float cfg_scale = 5.0f;        // reference defaults: 5 for generation, 6 for edits
  float img_cfg_scale = 1.5f;    // edits
  std::optional<uint64_t> seed;  // image i uses seed + i; unset: the server picks one
  ImageFormat format = ImageFormat::Png;
  int jpeg_quality = 95;  // output_compression
  bool stream = false;
};

// The generation request body. Throws ApiError 400 naming the field.
ImageJobRequest parse_generation_request(std::string_view body, const Limits& limits);

// One field of a multipart/form-data edit request.
struct FormField {
  std::string content;
  std::string filename;      // set for file parts
  std::string content_type;  // of the part, if given
};
using FormFields = std::multimap<std::string, FormField>;

// The edit form: "image" (or "image[]"; exactly one PNG/JPEG file) and "prompt", plus the
// optional n, steps, cfg_scale, img_cfg_scale, seed, response_format, output_format,
// output_compression, size ("auto" only), stream, model. Throws ApiError 400 naming the field.
ImageJobRequest parse_edit_form(const FormFields& fields, const Limits& limits);

// Limits for reading a form off the wire: how large one text field may be, and which names
// are accepted (the reader refuses others before buffering them).
inline constexpr size_t kMaxFormTextBytes = 64 * 1024;
bool is_edit_form_field(const std::string& name);

// data[i] of an images response, and the response itself.
struct ProducedImage {
  std::vector<uint8_t> bytes;  // encoded PNG/JPEG
  int width = 0, height = 0;
  uint64_t seed = 0;
  std::string parameters;  // the "parameters" text (also inside the PNG)
};
Json image_data_json(const ProducedImage& img);
Json images_response_json(int64_t created, ImageFormat format,
                          const std::vector<ProducedImage>& images);
const char* format_name(ImageFormat f);

}  // namespace ovis::serve
