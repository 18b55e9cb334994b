// The JSON header of a safetensors file, read straight into tensor entries: no JSON tree is built,
// so its memory is that of the entries themselves, and every entry is validated against the data
// section as it is read (dtype, shape, offsets inside the data, byte length = numel * dtype size).
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "core/tensor.hpp"
#include "io/tensor_file.hpp"

namespace ovis {

// {dtype, shape, byte range in the data section}, as for every mapped tensor file.
using SafetensorsEntry = TensorEntry;

// Limits beyond what the format states: tensors of more dimensions, or headers nested deeper,
// are refused as malformed.
inline constexpr size_t kMaxSafetensorsRank = 64;

// Entries of `header` (the JSON text after the 8-byte length) for a data section of `data_size`
// bytes. Throws ovis::Error naming `path` and the tensor on any problem. "__metadata__" must map
// strings to strings, as the reference implementation requires; it is checked and dropped.
std::map<std::string, SafetensorsEntry> parse_safetensors_header(std::string_view header,
                                                                 size_t data_size,
                                                                 const std::string& path);

}  // namespace ovis
