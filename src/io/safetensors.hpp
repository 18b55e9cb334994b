// safetensors reading: one memory-mapped file, or a sharded checkpoint described by
// model.safetensors.index.json. Tensors come back as zero-copy views in their stored dtype.
// Every header is validated up front (size limits, JSON shape, dtype, offsets inside the file,
// byte length == numel * dtype size) without building a JSON tree; errors name the file and the
// tensor. Memory before any tensor is read is bounded by the headers' and index's sizes.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "io/safetensors_header.hpp"
#include "io/tensor_file.hpp"

namespace ovis {

class SafetensorsFile final : public TensorFile {
 public:
  // Maps and validates the file; throws ovis::Error naming `path` on any problem.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();

  const std::string& path() const override { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const override { return entries_; }
  // View into the mapping; keeps the mapping alive.
  Tensor tensor(const std::string& name) const override;

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  size_t size_ = 0;
  size_t data_offset_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::weak_ptr<SafetensorsFile> self_;
};

// All tensors of a checkpoint folder (or a list of files, or one GGUF file), by name.
class TensorStore {
 public:
  // One already opened file (a GGUF model file).
  static TensorStore of_file(std::shared_ptr<const TensorFile> file);
  // Opens `dir/<index_name>` (an HF index) if present, else `dir/<single_name>`.
  static TensorStore open_dir(const std::string& dir,
                              const std::string& index_name = "model.safetensors.index.json",
                              const std::string& single_name = "model.safetensors");
  static TensorStore open_files(const std::vector<std::string>& paths);

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  // Throws "<file>: missing tensor '<name>'" style errors.
  Tensor get(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  // File that holds `name` (for error messages).
  std::string file_of(const std::string& name) const;
  std::vector<std::string> names() const;
  const std::string& origin() const { return origin_; }

 private:
  std::vector<std::shared_ptr<const TensorFile>> files_;
  std::map<std::string, size_t> where_;
  std::string origin_;
};

// Writes tensors (F32/BF16/F16/I64/U8) to a .safetensors file; used by tests and tools.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors);

}  // namespace ovis
