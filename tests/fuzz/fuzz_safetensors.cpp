// Fuzz target: a .safetensors file, opened through the real path (a memfd: mmap, header length,
// header, validation) and every tensor read to the last byte (float ones converted too).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "io/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz.safetensors", 0);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != ssize_t(size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    auto f = ovis::SafetensorsFile::open(path);
    uint64_t sum = 0;
    for (const auto& [name, entry] : f->entries()) {
      const ovis::Tensor t = f->tensor(name);
      if (t.nbytes() != entry.end - entry.begin) std::abort();
      const auto* bytes = static_cast<const uint8_t*>(t.raw());
      for (size_t i = 0; i < t.nbytes(); ++i) sum += bytes[i];
      if (t.dtype() == ovis::DType::F32 || t.dtype() == ovis::DType::BF16 ||
          t.dtype() == ovis::DType::F16)
        sum += uint64_t(t.to_vector().size());
    }
    if (sum == 0xdeadbeefdeadbeefull) std::abort();  // keeps the reads
  } catch (const ovis::Error&) {
  }
  return 0;
}
