// Typed reading of one value inside a parsed JSON file, for files from strangers: every access
// checks the type and range, and every error is one ovis::Error line naming the file and the
// field as a path, e.g.
//   config.json: visual_generator_config.axes_dim[1]: expected an integer, got a string
// Nothing is copied: a JsonField is a reference to a value of a tree that must outlive it, plus
// the path that led there.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace ovis {

// "a.b[3]" for key "b" then index 3 under "a"; keys that are not [A-Za-z0-9_]+ are written as
// ["..."] with control characters, quotes and backslashes escaped (so a path is always one
// printable line); very long keys are shortened.
std::string json_path_key(const std::string& parent, std::string_view key);
std::string json_path_index(const std::string& parent, size_t index);
// `s` between single quotes for an error message: control characters, quotes and backslashes
// escaped, so the message stays one printable line; very long text is shortened.
std::string quote_for_error(std::string_view s);
// "a string", "an integer", "an object", ... for messages.
const char* json_kind(const nlohmann::json& v);

class JsonField {
 public:
  // The root of the tree parsed from `file`.
  JsonField(const nlohmann::json& value, const std::string& file) : v_(&value), file_(&file) {}

  const nlohmann::json& json() const { return *v_; }
  const std::string& file() const { return *file_; }
  const std::string& path() const { return path_; }

  // Member `key` of this object (the object type is checked); a missing or null member is an
  // error naming it.
  JsonField operator[](std::string_view key) const;
  // True when this is an object with a non-null member `key`.
  bool has(std::string_view key) const;
  // Element `i` of this array (type and bounds checked).
  JsonField at(size_t i) const;
  size_t size() const;  // elements of an array or members of an object (type checked)

  // Checked reads: the JSON type must match and the value must lie in [lo, hi].
  int64_t integer(int64_t lo, int64_t hi) const;
  double number(double lo, double hi) const;  // integers are accepted as numbers
  bool boolean() const;
  const std::string& string() const;
  const nlohmann::json& object() const;
  const nlohmann::json& array() const;

  // Throws "<file>: <path>: <message>" (or "<file>: <message>" at the root).
  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    ::ovis::fail(*file_, ": ", path_.empty() ? "" : path_ + ": ", args...);
  }

 private:
  JsonField(const nlohmann::json& value, const std::string& file, std::string path)
      : v_(&value), file_(&file), path_(std::move(path)) {}
  [[noreturn]] void type_error(const char* expected) const;

  const nlohmann::json* v_;
  const std::string* file_;
  std::string path_;
};

}  // namespace ovis
