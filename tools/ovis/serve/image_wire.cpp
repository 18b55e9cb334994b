#include "serve/image_wire.hpp"

#include <charconv>
#include <set>

#include "serve/api_error.hpp"
#include "serve/base64.hpp"
#include "serve/data_url.hpp"

namespace ovis::serve {

namespace {

// "WxH" with both sides in [16, max_side]; "auto" = 1024x1024 (the reference size) capped.
void parse_size(const std::string& size, int max_side, int& width, int& height) {
  if (size == "auto") {
    width = height = std::min(1024, max_side);
    return;
  }
  const size_t x = size.find('x');
  auto side = [&](std::string_view s, int& out) {
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc() && p == end && !s.empty();
  };
  if (x == std::string::npos || !side(std::string_view(size).substr(0, x), width) ||
      !side(std::string_view(size).substr(x + 1), height))
    throw invalid_request("size", "size must be \"WIDTHxHEIGHT\" (e.g. \"512x512\") or \"auto\"");
  if (width < 16 || height < 16 || width > max_side || height > max_side)
    throw invalid_request("size", "size sides must be between 16 and " + std::to_string(max_side) +
                                      " pixels (got " + size.substr(0, 32) + ")");
}

ImageFormat parse_format(const std::string& f) {
  if (f == "png") return ImageFormat::Png;
  if (f == "jpeg" || f == "jpg") return ImageFormat::Jpeg;
  throw invalid_request("output_format", "output_format must be png or jpeg");
}

void check_response_format(const std::optional<std::string>& rf) {
  if (rf && *rf != "b64_json")
    throw invalid_request("response_format",
                          "response_format must be b64_json: this server hosts no image URLs");
}

// The fields both endpoints share, from a JSON object (generation) or form values converted to
// JSON (edit).
void parse_common(const Json& body, const Limits& limits, ImageJobRequest& out) {
  get_string(body, "model");
  auto prompt = get_string(body, "prompt");
  if (!prompt || prompt->empty())
    throw invalid_request("prompt", "prompt is required and must not be empty", "missing_field");
  out.prompt = std::move(*prompt);
  out.n = int(get_int(body, "n", 1, limits.max_n).value_or(1));
  out.steps = int(get_int(body, "steps", 1, limits.max_steps).value_or(out.steps));
  out.cfg_scale =
      float(get_number(body, "cfg_scale", 0.0, kMaxGuidanceScale).value_or(out.cfg_scale));
  if (auto seed = get_int(body, "seed", -1, INT64_MAX); seed && *seed >= 0)
    out.seed = uint64_t(*seed);
  check_response_format(get_string(body, "response_format"));
  if (auto f = get_string(body, "output_format")) out.format = parse_format(*f);
  if (auto q = get_int(body, "output_compression", 0, 100)) out.jpeg_quality = std::max(1, int(*q));
  out.stream = get_bool(body, "stream").value_or(false);
  if (body.contains("negative_prompt"))
    throw invalid_request("negative_prompt",
                          "negative_prompt is not supported: Ovis-U1 guides against a fixed "
                          "unconditional prompt",
                          "unsupported_parameter");
  if (auto bg = get_string(body, "background"); bg && *bg == "transparent")
    throw invalid_request("background", "transparent backgrounds are not supported",
                          "unsupported_parameter");
}

// Form values are strings: numbers and booleans are converted to JSON values so that the same
// typed accessors (and error messages) apply.
Json form_value(const std::string& key, const std::string& value) {
  static const std::set<std::string> numeric = {
      "n", "steps", "cfg_scale", "img_cfg_scale", "seed", "output_compression"};
  if (numeric.count(key)) {
    Json v = Json::parse(value, nullptr, false);
    if (v.is_discarded() || !v.is_number())
      throw invalid_request(key, key + " must be a number", "invalid_type");
    return v;
  }
  if (key == "stream") {
    if (value == "true" || value == "1") return true;
    if (value == "false" || value == "0") return false;
    throw invalid_request(key, "stream must be true or false", "invalid_type");
  }
  return value;
}

}  // namespace

ImageJobRequest parse_generation_request(std::string_view body_text, const Limits& limits) {
  const Json body = parse_json_object(body_text);
  ImageJobRequest out;
  out.edit = false;
  out.cfg_scale = 5.0f;
  parse_common(body, limits, out);
  parse_size(get_string(body, "size").value_or("auto"), limits.max_side, out.width, out.height);
  return out;
}

bool is_edit_form_field(const std::string& name) {
  static const std::set<std::string> known = {"image",          "image[]",
                                              "prompt",         "n",
                                              "steps",          "cfg_scale",
                                              "img_cfg_scale",  "seed",
                                              "size",           "response_format",
                                              "output_format",  "output_compression",
                                              "stream",         "model",
                                              "user",           "quality",
                                              "background",     "mask",
                                              "input_fidelity", "partial_images"};
  return known.count(name) > 0;
}

ImageJobRequest parse_edit_form(const FormFields& fields, const Limits& limits) {
  ImageJobRequest out;
  out.edit = true;
  out.cfg_scale = 6.0f;
  Json body = Json::object();
  const FormField* image = nullptr;
  for (const auto& [name, f] : fields) {
    if (name == "image" || name == "image[]") {
      if (image)
        throw invalid_request("image", "exactly one image is edited per request",
                              "too_many_images");
      image = &f;
      continue;
    }
    if (name == "mask")
      throw invalid_request("mask", "mask is not supported: Ovis-U1 edits follow the instruction",
                            "unsupported_parameter");
    if (!is_edit_form_field(name))
      throw invalid_request(name.substr(0, 64), "unknown form field '" + name.substr(0, 64) + "'",
                            "unknown_parameter");
    if (!f.filename.empty())
      throw invalid_request(name, name + " must be a text field, not a file", "invalid_type");
    if (body.contains(name))
      throw invalid_request(name, name + " is given more than once", "duplicate_field");
    body[name] = form_value(name, f.content);
  }
  if (!image)
    throw invalid_request("image", "image is required (a PNG or JPEG file)", "missing_field");
  parse_common(body, limits, out);
  out.img_cfg_scale =
      float(get_number(body, "img_cfg_scale", 0.0, kMaxGuidanceScale).value_or(1.5));
  if (auto size = get_string(body, "size"); size && *size != "auto")
    throw invalid_request("size",
                          "edits keep the input image's size (rounded to multiples of "
                          "32): size must be \"auto\" or absent");
  int64_t budget = limits.max_pixels;
  out.input = decode_request_image(reinterpret_cast<const uint8_t*>(image->content.data()),
                                   image->content.size(), "image", budget);
  return out;
}

const char* format_name(ImageFormat f) {
  return f == ImageFormat::Png ? "png" : "jpeg";
}

Json image_data_json(const ProducedImage& img) {
  return {{"b64_json", base64_encode(img.bytes)},
          {"seed", img.seed},
          {"width", img.width},
          {"height", img.height},
          {"parameters", img.parameters}};
}

Json images_response_json(int64_t created, ImageFormat format,
                          const std::vector<ProducedImage>& images) {
  Json data = Json::array();
  for (const ProducedImage& img : images) data.push_back(image_data_json(img));
  Json out = {{"created", created}, {"data", data}, {"output_format", format_name(format)}};
  if (!images.empty())
    out["size"] = std::to_string(images[0].width) + "x" + std::to_string(images[0].height);
  return out;
}

}  // namespace ovis::serve
