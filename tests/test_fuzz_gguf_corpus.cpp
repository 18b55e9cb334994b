// Replays the committed GGUF fuzz corpus (tests/fuzz/corpus/gguf) through the fuzz target, as
// libFuzzer's -runs=0 does: every seed must parse or fail with ovis::Error, never crash (ASan and
// UBSan check the reads in a sanitizer build).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "fuzz/fuzz_gguf.cpp"

TEST(FuzzGgufCorpus, EverySeedReplaysCleanly) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(OVIS_SOURCE_DIR) / "tests/fuzz/corpus/gguf";
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::ifstream in(e.path(), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), {});
    std::unique_ptr<uint8_t[]> data(new uint8_t[bytes.empty() ? 1 : bytes.size()]);
    std::copy(bytes.begin(), bytes.end(), data.get());
    EXPECT_EQ(LLVMFuzzerTestOneInput(data.get(), bytes.size()), 0) << e.path();
    ++n;
  }
  EXPECT_GE(n, 4);
}
