#include "serve/json_fields.hpp"

#include <cmath>

#include "serve/api_error.hpp"

namespace ovis::serve {

namespace {

const Json* field(const Json& obj, const std::string& key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const char* type_name(const Json& v) {
  return v.type_name();
}

}  // namespace

Json parse_json_object(std::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw invalid_request("", "the request body is not valid JSON", "invalid_json");
  if (!j.is_object())
    throw invalid_request(
        "", std::string("the request body must be a JSON object, not ") + type_name(j),
        "invalid_json");
  return j;
}

std::optional<int64_t> get_int(const Json& obj, const std::string& key, int64_t min, int64_t max) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  int64_t value = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    if (u > uint64_t(max))
      throw invalid_request(key, key + " must be at most " + std::to_string(max));
    value = int64_t(u);
  } else if (v->is_number_integer()) {
    value = v->get<int64_t>();
  } else if (v->is_number_float()) {
    const double d = v->get<double>();
    if (!std::isfinite(d) || d != std::floor(d))
      throw invalid_request(key, key + " must be an integer", "invalid_type");
    if (d < double(min) || d > double(max))
      throw invalid_request(
          key, key + " must be between " + std::to_string(min) + " and " + std::to_string(max));
    value = int64_t(d);
  } else {
    throw invalid_request(key, key + " must be an integer, not " + type_name(*v), "invalid_type");
  }
  if (value < min || value > max)
    throw invalid_request(key, key + " must be between " + std::to_string(min) + " and " +
                                   std::to_string(max) + " (got " + std::to_string(value) + ")");
  return value;
}

std::optional<double> get_number(const Json& obj, const std::string& key, double min, double max) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number())
    throw invalid_request(key, key + " must be a number, not " + type_name(*v), "invalid_type");
  const double d = v->get<double>();
  if (!std::isfinite(d) || d < min || d > max) {
    throw invalid_request(
        key, key + " must be between " + Json(min).dump() + " and " + Json(max).dump());
  }
  return d;
}

std::optional<bool> get_bool(const Json& obj, const std::string& key) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_boolean())
    throw invalid_request(key, key + " must be true or false, not " + type_name(*v),
                          "invalid_type");
  return v->get<bool>();
}

std::optional<std::string> get_string(const Json& obj, const std::string& key) {
  const Json* v = field(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string())
    throw invalid_request(key, key + " must be a string, not " + type_name(*v), "invalid_type");
  return v->get<std::string>();
}

void refuse_unless_default(const Json& obj, const std::string& key, const std::string& why) {
  const Json* v = field(obj, key);
  if (!v) return;
  const bool off = (v->is_boolean() && !v->get<bool>()) ||
                   (v->is_number() && v->get<double>() == 0.0) ||
                   ((v->is_array() || v->is_object()) && v->empty()) ||
                   (v->is_string() && (*v == "none" || *v == "auto" || *v == "text"));
  if (!off) throw invalid_request(key, key + " is not supported: " + why, "unsupported_parameter");
}

}  // namespace ovis::serve
