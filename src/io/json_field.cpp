#include "io/json_field.hpp"

#include <cmath>
#include <cstdio>

namespace ovis {

namespace {

constexpr size_t kMaxKeyShown = 200;

bool is_plain_key(std::string_view key) {
  if (key.empty()) return false;
  for (const char c : key)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

void append_escaped(std::string& out, std::string_view s, char quote) {
  const size_t shown = std::min(s.size(), kMaxKeyShown);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == quote || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  if (shown < s.size()) out += "...";
}

}  // namespace

std::string quote_for_error(std::string_view s) {
  std::string out = "'";
  append_escaped(out, s, '\'');
  return out + "'";
}

std::string json_path_key(const std::string& parent, std::string_view key) {
  if (is_plain_key(key) && key.size() <= kMaxKeyShown)
    return parent.empty() ? std::string(key) : parent + "." + std::string(key);
  std::string out = parent + "[\"";
  append_escaped(out, key, '"');
  return out + "\"]";
}

std::string json_path_index(const std::string& parent, size_t index) {
  return parent + "[" + std::to_string(index) + "]";
}

const char* json_kind(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "an integer";
    case nlohmann::json::value_t::number_float:
      return "a fractional number";
    default:
      return "an unsupported value";
  }
}

void JsonField::type_error(const char* expected) const {
  fail("expected ", expected, ", got ", json_kind(*v_));
}

JsonField JsonField::operator[](std::string_view key) const {
  object();
  auto it = v_->find(key);
  if (it == v_->end() || it->is_null())
    ::ovis::fail(*file_, ": missing field '", json_path_key(path_, key), "'");
  return JsonField(*it, *file_, json_path_key(path_, key));
}

bool JsonField::has(std::string_view key) const {
  if (!v_->is_object()) return false;
  auto it = v_->find(key);
  return it != v_->end() && !it->is_null();
}

JsonField JsonField::at(size_t i) const {
  array();
  if (i >= v_->size()) fail("has ", v_->size(), " elements, element ", i, " is missing");
  return JsonField((*v_)[i], *file_, json_path_index(path_, i));
}

size_t JsonField::size() const {
  if (!v_->is_array() && !v_->is_object()) type_error("an array or an object");
  return v_->size();
}

int64_t JsonField::integer(int64_t lo, int64_t hi) const {
  if (v_->is_number_unsigned()) {
    const uint64_t u = v_->get<uint64_t>();
    // nlohmann stores every non-negative literal as unsigned: both bounds apply here too.
    if (hi < 0 || u > uint64_t(hi) || (lo > 0 && u < uint64_t(lo)))
      fail(u, " is out of range [", lo, ", ", hi, "]");
    return int64_t(u);
  }
  if (!v_->is_number_integer()) type_error("an integer");
  const int64_t x = v_->get<int64_t>();
  if (x < lo || x > hi) fail(x, " is out of range [", lo, ", ", hi, "]");
  return x;
}

double JsonField::number(double lo, double hi) const {
  if (!v_->is_number()) type_error("a number");
  const double x = v_->get<double>();
  if (!(x >= lo && x <= hi)) fail(x, " is out of range [", lo, ", ", hi, "]");
  return x;
}

bool JsonField::boolean() const {
  if (!v_->is_boolean()) type_error("a boolean");
  return v_->get<bool>();
}

const std::string& JsonField::string() const {
  if (!v_->is_string()) type_error("a string");
  return v_->get_ref<const std::string&>();
}

const nlohmann::json& JsonField::object() const {
  if (!v_->is_object()) type_error("an object");
  return *v_;
}

const nlohmann::json& JsonField::array() const {
  if (!v_->is_array()) type_error("an array");
  return *v_;
}

}  // namespace ovis
