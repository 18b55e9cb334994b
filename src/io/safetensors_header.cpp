#include "io/safetensors_header.hpp"

#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.hpp"
#include "io/checked_int.hpp"
#include "io/json_field.hpp"

namespace ovis {

namespace {

using nlohmann::json;

// Depth of a well-formed header: root object (1) > tensor entry (2) > shape/offsets array (3).
// Unknown members of an entry are skipped if they nest no deeper than this.
constexpr int kMaxHeaderDepth = 8;

// Consumes nlohmann's SAX events for the header. The parser keeps its own state on the heap; this
// handler keeps only the entry being read, so nothing here recurses or grows with nesting.
class HeaderReader : public nlohmann::json_sax<json> {
 public:
  HeaderReader(size_t data_size, const std::string& path) : data_size_(data_size), path_(path) {}

  std::map<std::string, SafetensorsEntry> take() { return std::move(entries_); }

  bool null() override {
    if (depth_ == 1 && name_ == kMetadata) return true;  // "__metadata__": null
    return scalar("null");
  }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v < 0) return scalar("a negative integer");
    return number_unsigned(number_unsigned_t(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (skip_depth_) return true;
    if (depth_ == 3 && member_ == Member::Shape) {
      if (cur_.shape.size() >= kMaxSafetensorsRank)
        fail_tensor("has more than ", kMaxSafetensorsRank, " dimensions");
      // int64 dimensions; the product is checked when the entry ends.
      if (v > uint64_t(INT64_MAX)) fail_tensor("has an invalid shape");
      cur_.shape.push_back(int64_t(v));
      return true;
    }
    if (depth_ == 3 && member_ == Member::Offsets) {
      if (n_offsets_ >= 2) fail_tensor("has invalid data_offsets (need exactly 2)");
      offsets_[n_offsets_++] = v;
      return true;
    }
    return scalar("an integer");
  }
  bool number_float(number_float_t, const string_t&) override {
    return scalar("a fractional number");
  }
  bool string(string_t& s) override {
    if (skip_depth_) return true;
    if (depth_ == 2 && in_metadata_) return true;
    if (depth_ == 2 && member_ == Member::Dtype) {
      DType t;
      if (!dtype_from_safetensors(s, &t)) fail_tensor("has unsupported dtype ", quote_for_error(s));
      cur_.dtype = t;
      return true;
    }
    return scalar("a string");
  }
  bool binary(binary_t&) override { return scalar("binary data"); }

  bool start_object(std::size_t) override {
    enter();
    if (skip_depth_) return true;
    if (depth_ == 1) return true;  // the root
    if (depth_ == 2 && name_ == kMetadata) {
      in_metadata_ = true;
      return true;
    }
    if (depth_ == 2) {
      cur_ = SafetensorsEntry{};
      seen_ = 0;
      n_offsets_ = 0;
      return true;
    }
    return container_in_wrong_place();
  }
  bool start_array(std::size_t) override {
    enter();
    if (skip_depth_) return true;
    if (depth_ == 3 && (member_ == Member::Shape || member_ == Member::Offsets)) return true;
    return container_in_wrong_place();
  }
  bool key(string_t& k) override {
    if (skip_depth_) return true;
    if (depth_ == 1) {
      name_ = std::move(k);
      return true;
    }
    if (depth_ == 2 && in_metadata_) return true;
    // depth 2: a member of a tensor entry
    member_ = k == "dtype"          ? Member::Dtype
              : k == "shape"        ? Member::Shape
              : k == "data_offsets" ? Member::Offsets
                                    : Member::Other;
    if (member_ != Member::Other) {
      const unsigned bit = 1u << unsigned(member_);
      if (seen_ & bit) fail_tensor("repeats the member '", k, "'");
      seen_ |= bit;
    }
    return true;
  }
  bool end_object() override {
    if (skip_depth_) return leave_skipped();
    if (depth_ == 2 && in_metadata_) {
      in_metadata_ = false;
    } else if (depth_ == 2) {
      finish_entry();
    }
    --depth_;
    return true;
  }
  bool end_array() override {
    if (skip_depth_) return leave_skipped();
    if (depth_ == 3 && member_ == Member::Offsets && n_offsets_ != 2)
      fail_tensor("has invalid data_offsets (need exactly 2)");
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string msg = e.what();
    if (msg.rfind("[json.exception.", 0) == 0 && msg.find("] ") != std::string::npos)
      msg = msg.substr(msg.find("] ") + 2);
    fail(path_, ": malformed safetensors header: ", msg);
  }

 private:
  enum class Member : unsigned { Dtype = 0, Shape = 1, Offsets = 2, Other = 3 };
  static constexpr const char* kMetadata = "__metadata__";

  void enter() {
    if (++depth_ > kMaxHeaderDepth)
      fail(path_, ": malformed safetensors header: nested deeper than ", kMaxHeaderDepth,
           " levels");
  }
  // A scalar where the format has none: allowed only as the value of an unknown entry member.
  bool scalar(const char* what) {
    if (skip_depth_) return true;
    if (depth_ == 2 && !in_metadata_ && member_ == Member::Other) return true;
    if (depth_ == 0) fail(path_, ": malformed safetensors header: not a JSON object");
    if (in_metadata_ || (depth_ == 1 && name_ == kMetadata))
      fail(path_, ": malformed safetensors header: __metadata__ must map strings to strings");
    if (depth_ == 1) fail_tensor("is ", what, ", not an entry object");
    fail_tensor("has an invalid ", member_name(), " (", what, ")");
  }
  // An array/object where the format has none: skipped inside an unknown member, else an error.
  bool container_in_wrong_place() {
    if (depth_ == 3 && !in_metadata_ && member_ == Member::Other) {
      skip_depth_ = depth_;
      return true;
    }
    if (depth_ == 1) fail(path_, ": malformed safetensors header: not a JSON object");
    if (in_metadata_)
      fail(path_, ": malformed safetensors header: __metadata__ must map strings to strings");
    if (depth_ == 2 && name_ == kMetadata)
      fail(path_, ": malformed safetensors header: __metadata__ must map strings to strings");
    if (depth_ == 2) fail_tensor("is not an entry object");
    fail_tensor("has an invalid ", member_name());
  }
  bool leave_skipped() {
    if (depth_ == skip_depth_) skip_depth_ = 0;
    --depth_;
    return true;
  }
  const char* member_name() const {
    switch (member_) {
      case Member::Dtype:
        return "dtype";
      case Member::Shape:
        return "shape";
      case Member::Offsets:
        return "data_offsets";
      default:
        return "member";
    }
  }
  template <class... Args>
  [[noreturn]] void fail_tensor(const Args&... args) const {
    fail(path_, ": tensor ", quoted_name(), " ", args...);
  }
  std::string quoted_name() const { return quote_for_error(name_); }

  void finish_entry() {
    if (seen_ != 7u)
      fail(path_, ": malformed header entry for tensor ", quoted_name(),
           " (needs dtype, shape and data_offsets)");
    if (entries_.count(name_)) fail_tensor("appears twice in the header");
    uint64_t numel = 1;
    for (const int64_t d : cur_.shape) {
      auto n = checked_mul_u64(numel, uint64_t(d));
      if (!n || *n > uint64_t(INT64_MAX))
        fail_tensor("shape ", shape_str(cur_.shape), " is too large");
      numel = *n;
    }
    const uint64_t b = offsets_[0], e = offsets_[1];
    if (b > e || e > data_size_)
      fail_tensor("data_offsets [", b, ", ", e, "] lie outside the file's data section (",
                  data_size_, " bytes; truncated file?)");
    const auto bytes = checked_mul_u64(numel, dtype_size(cur_.dtype));
    if (!bytes || e - b != *bytes)
      fail_tensor("has ", e - b, " bytes but shape ", shape_str(cur_.shape), " of ",
                  dtype_name(cur_.dtype), " needs ",
                  bytes ? std::to_string(*bytes) : std::string("more than 2^64"));
    cur_.begin = size_t(b);
    cur_.end = size_t(e);
    entries_.emplace(std::move(name_), std::move(cur_));
    name_.clear();
  }

  const size_t data_size_;
  const std::string& path_;
  std::map<std::string, SafetensorsEntry> entries_;
  int depth_ = 0;
  int skip_depth_ = 0;  // depth of the unknown container being skipped, 0 when none
  bool in_metadata_ = false;
  std::string name_;  // tensor (or __metadata__) whose value is being read
  Member member_ = Member::Other;
  unsigned seen_ = 0;
  SafetensorsEntry cur_{};
  uint64_t offsets_[2] = {0, 0};
  int n_offsets_ = 0;
};

}  // namespace

std::map<std::string, SafetensorsEntry> parse_safetensors_header(std::string_view header,
                                                                 size_t data_size,
                                                                 const std::string& path) {
  HeaderReader reader(data_size, path);
  if (!json::sax_parse(header.begin(), header.end(), &reader))
    fail(path, ": malformed safetensors header");
  return reader.take();
}

}  // namespace ovis
