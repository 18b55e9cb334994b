// Whole-file reads of untrusted files with a size cap checked before reading. Only regular files
// are read: a FIFO, a device or a directory is an error (opened without blocking), so a path such
// as /dev/zero or a named pipe cannot hang or exhaust memory.
#pragma once
#include <cstddef>
#include <string>

namespace ovis {

// Contents of the regular file at `path`, at most `max_bytes`. Errors name `path`; `what` says
// what the file is in them ("tokenizer file", "image file", ...).
std::string read_file_limited(const std::string& path, size_t max_bytes, const char* what);

}  // namespace ovis
