// GGUF v3 model files (the ggml single-file format): a header of typed key/value metadata and
// tensor infos, then the aligned tensor data. Tensors use ggml's type ids and block layouts
// (core/quant_blocks.hpp); dims are stored fastest-varying first (ne[0] is the row length), so an
// HF weight [out, in] is stored as ne = {in, out} and comes back here as Shape{out, in}.
//
// Reading validates everything before any tensor is used: magic and version, every count and
// string length against the bytes left in the file, value and tensor types, duplicate keys and
// names, the alignment, and every tensor's offset (aligned, inside the file, no overflow). Each
// problem is one ovis::Error naming the file and the key or tensor.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "io/tensor_file.hpp"

namespace ovis {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

// ggml tensor type ids of the dtypes ovis.cpp reads and writes.
bool ggml_type_of(DType t, uint32_t* id);
bool dtype_of_ggml_type(uint32_t id, DType* t);

// One metadata value. Scalars are widened into u / i / f; strings are kept; arrays keep their
// element type and length (elements are validated, not stored).
struct GgufValue {
  GgufType type = GgufType::U8;
  uint64_t u = 0;
  int64_t i = 0;
  double f = 0;
  std::string str;
  GgufType array_type = GgufType::U8;
  uint64_t array_size = 0;
};

struct GgufHeader {
  uint32_t version = 0;
  uint32_t alignment = 32;
  std::map<std::string, GgufValue> metadata;
  std::vector<std::string> tensor_order;  // as stored
  std::map<std::string, TensorEntry> tensors;
  size_t data_offset = 0;  // start of the tensor data section in the file
};

// Parses and validates the header of a GGUF file held in memory (the whole file: tensor data
// ranges are checked against `size`). `origin` names the file in errors.
GgufHeader parse_gguf_header(const uint8_t* data, size_t size, const std::string& origin);

class GgufFile final : public TensorFile {
 public:
  static std::shared_ptr<GgufFile> open(const std::string& path);
  ~GgufFile() override;

  const std::string& path() const override { return path_; }
  const std::map<std::string, TensorEntry>& entries() const override { return header_.tensors; }
  Tensor tensor(const std::string& name) const override;
  const GgufHeader& header() const { return header_; }
  // A string value; nullopt when absent; an error naming the key when it is not a string.
  std::optional<std::string> get_string(const std::string& key) const;
  size_t size() const { return size_; }

 private:
  GgufFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  GgufHeader header_;
  std::weak_ptr<GgufFile> self_;
};

// True when `path` is a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

// Writes a GGUF v3 file: metadata and tensor infos first, then each tensor's bytes in the order
// the tensors were added. The file is written to a temporary name beside `path` and renamed on
// finish(); destroying an unfinished writer removes the temporary.
class GgufWriter {
 public:
  explicit GgufWriter(std::string path, uint32_t alignment = 32);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;

  void set_string(const std::string& key, const std::string& value);
  void set_u32(const std::string& key, uint32_t value);
  void set_f32(const std::string& key, float value);
  void add_tensor(const std::string& name, const Shape& shape, DType dtype);
  // Bytes of the tensors in the order they were added; a tensor may come in several pieces. The
  // header is written before the first.
  void write_tensor_data(const void* data, size_t bytes);
  void finish();

 private:
  struct Kv {
    std::string key;
    GgufType type;
    std::string str;
    uint64_t u = 0;
    float f = 0;
  };
  struct Info {
    std::string name;
    Shape shape;
    DType dtype;
    size_t bytes, offset;
  };
  void write_header();
  void put(const void* p, size_t n);
  void pad_to(size_t alignment);

  std::string path_, tmp_;
  uint32_t alignment_;
  std::vector<Kv> kvs_;
  std::vector<Info> infos_;
  size_t data_bytes_ = 0;
  size_t next_ = 0, cur_ = 0;  // tensor being written, its bytes so far
  std::FILE* out_ = nullptr;
  size_t written_ = 0;
  bool header_done_ = false, finished_ = false;
};

}  // namespace ovis
