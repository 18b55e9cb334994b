// Fuzz target: a GGUF file opened through the real path (a memfd: mmap, header parse and
// validation), then every tensor read to its last byte and float/quantized ones converted.
// scripts/fuzz.sh gguf SECONDS runs it; CTest replays tests/fuzz/corpus/gguf (fuzz_corpus.gguf).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.hpp"
#include "io/gguf.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fuzz.gguf", 0);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != ssize_t(size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  try {
    auto f = ovis::GgufFile::open(path);
    uint64_t sum = 0;
    for (const char* key : {"general.architecture", "tokenizer.huggingface.json"})
      if (auto v = f->get_string(key)) sum += v->size();
    for (const auto& [name, entry] : f->entries()) {
      const ovis::Tensor t = f->tensor(name);
      if (t.nbytes() != entry.end - entry.begin) std::abort();
      const auto* bytes = static_cast<const uint8_t*>(t.raw());
      for (size_t i = 0; i < t.nbytes(); ++i) sum += bytes[i];
      // Conversions of small tensors (bounded work per input).
      if (t.numel() <= 4096 && t.dtype() != ovis::DType::I32 && t.dtype() != ovis::DType::I64 &&
          t.dtype() != ovis::DType::F64)
        sum += uint64_t(t.to_vector().size());
    }
    if (sum == 0xdeadbeefdeadbeefull) std::abort();  // keeps the reads
  } catch (const ovis::Error&) {
  }
  return 0;
}
