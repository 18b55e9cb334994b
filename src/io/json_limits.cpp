#include "io/json_limits.hpp"

#include <vector>

#include "core/error.hpp"
#include "io/read_file.hpp"

namespace ovis {

namespace {

using nlohmann::json;

// Heap bytes one node of a nlohmann::json tree (std::map objects, std::vector arrays) costs,
// measured with glibc malloc: within ~35% above the real figure for any shape of input.
constexpr size_t kObjectBytes = 80;
constexpr size_t kArrayBytes = 64;
constexpr size_t kMemberBytes = 96;   // map node + key string + value
constexpr size_t kElementBytes = 32;  // array slot, counting vector growth
constexpr size_t kStringBytes = 48;   // heap-allocated std::string
constexpr size_t kShortString = 15;   // longest string kept inline (SSO)

// Builds the tree from nlohmann's SAX events (its parser keeps its own state on the heap, so
// neither parsing nor this builder recurses), enforcing the depth and memory limits as it goes.
class BoundedDomBuilder : public nlohmann::json_sax<json> {
 public:
  BoundedDomBuilder(const std::string& origin, const JsonLimits& limits)
      : origin_(origin), limits_(limits) {}

  json take_root() { return std::move(root_); }

  bool null() override { return place(json(nullptr), kElementBytes); }
  bool boolean(bool v) override { return place(json(v), kElementBytes); }
  bool number_integer(number_integer_t v) override { return place(json(v), kElementBytes); }
  bool number_unsigned(number_unsigned_t v) override { return place(json(v), kElementBytes); }
  bool number_float(number_float_t v, const string_t&) override {
    return place(json(v), kElementBytes);
  }
  bool string(string_t& v) override {
    const size_t cost = kElementBytes + kStringBytes + v.size();
    return place(json(std::move(v)), cost);
  }
  bool binary(binary_t&) override { fail(origin_, ": unexpected binary value in JSON"); }
  bool start_object(std::size_t) override { return open(json::object(), kObjectBytes); }
  bool start_array(std::size_t) override { return open(json::array(), kArrayBytes); }
  bool key(string_t& k) override {
    charge(kMemberBytes + (k.size() > kShortString ? k.size() + 1 : 0));
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep its position and reason.
    std::string msg = e.what();
    if (msg.rfind("[json.exception.", 0) == 0 && msg.find("] ") != std::string::npos)
      msg = msg.substr(msg.find("] ") + 2);
    fail(origin_, ": malformed JSON: ", msg);
  }

 private:
  void charge(size_t bytes) {
    tree_bytes_ += bytes;
    if (tree_bytes_ > limits_.max_tree_bytes)
      fail(origin_, ": JSON too large: its parsed tree would exceed ", limits_.max_tree_bytes >> 20,
           " MiB");
  }
  // Puts `v` where the parser is (root, next array element, or the member named by the last
  // key) and returns its address.
  json* insert(json&& v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      auto& a = top.get_ref<json::array_t&>();
      a.push_back(std::move(v));
      return &a.back();
    }
    json& slot = top.get_ref<json::object_t&>()[key_];  // a repeated key keeps the last value
    slot = std::move(v);
    return &slot;
  }
  bool place(json&& v, size_t cost) {
    charge(cost);
    insert(std::move(v));
    return true;
  }
  bool open(json&& container, size_t cost) {
    if (int(stack_.size()) >= limits_.max_depth)
      fail(origin_, ": JSON nested deeper than ", limits_.max_depth, " levels");
    charge(cost);
    stack_.push_back(insert(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  const std::string& origin_;
  const JsonLimits& limits_;
  json root_;
  std::vector<json*> stack_;  // open containers; their addresses are stable while children grow
  std::string key_;
  size_t tree_bytes_ = 0;
};

}  // namespace

json parse_json(std::string_view text, const std::string& origin, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    fail(origin, ": ", text.size(), " bytes exceed the ", limits.max_bytes, "-byte limit for it");
  BoundedDomBuilder builder(origin, limits);
  if (!json::sax_parse(text.begin(), text.end(), &builder))
    fail(origin, ": malformed JSON");  // parse_error() throws first; kept for safety
  return builder.take_root();
}

json read_json_file(const std::string& path, const JsonLimits& limits) {
  return parse_json(read_file_limited(path, limits.max_bytes, "JSON file"), path, limits);
}

}  // namespace ovis
