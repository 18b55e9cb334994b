// One mapped checkpoint file holding named tensors (safetensors or GGUF). TensorStore gathers the
// files of a checkpoint; tensors come back as zero-copy read-only views of the mapping.
#pragma once
#include <map>
#include <string>

#include "core/tensor.hpp"

namespace ovis {

struct TensorEntry {
  DType dtype;
  Shape shape;       // row-major, outermost first (GGUF's reversed dims already turned around)
  size_t begin = 0;  // byte offset from the start of the file's data section
  size_t end = 0;
};

class TensorFile {
 public:
  virtual ~TensorFile() = default;
  virtual const std::string& path() const = 0;
  virtual const std::map<std::string, TensorEntry>& entries() const = 0;
  bool has(const std::string& name) const { return entries().count(name) != 0; }
  // View into the mapping; keeps the mapping alive.
  virtual Tensor tensor(const std::string& name) const = 0;
};

}  // namespace ovis
