// Typed access to the fields of a JSON request object. A field of the wrong type or out of range
// is an ApiError 400 naming it; absent (or null) fields give nullopt.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace ovis::serve {

using Json = nlohmann::json;

// Parses a request body that must be one JSON object.
Json parse_json_object(std::string_view body);

// Integers also accept integral floats (5.0); bounds are inclusive.
std::optional<int64_t> get_int(const Json& obj, const std::string& key, int64_t min, int64_t max);
std::optional<double> get_number(const Json& obj, const std::string& key, double min, double max);
std::optional<bool> get_bool(const Json& obj, const std::string& key);
std::optional<std::string> get_string(const Json& obj, const std::string& key);

// Refuses a field this server cannot honour when it is set to anything but null or one of the
// values that mean "off" (e.g. tools: [], logprobs: false, presence_penalty: 0).
void refuse_unless_default(const Json& obj, const std::string& key, const std::string& why);

}  // namespace ovis::serve
