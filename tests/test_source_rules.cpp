// The backend boundary, enforced on the sources: outside src/core, src/ops and src/io no code
// loops over tensor elements itself — no OpenMP and no host element access — except in the
// host-side input preparation listed below and at named host sync points (a line marked
// "Host sync point" on it or just above it). Everything that touches activations or weights
// during a forward is an op, so every backend runs the whole model.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Host work by nature, uploaded afterwards: image decode/resize and patch order, the position-
// embedding interpolation for an image grid, and the seeded noise.
const std::set<std::string> kHostPreparation = {
    "src/vision/resize.cpp",           // Pillow-exact bicubic resize
    "src/vision/preprocess.cpp",       // smart_resize, normalisation, patch order -> pixel rows
    "src/vision/condition_image.cpp",  // generation-side image prep (crop, VAE pixel tensor)
    "src/vision/pos_embed.cpp",        // bicubic interpolation of the learned position grid
    "src/vision/merge_order.hpp",      // 2x2-merge patch positions
    "src/gen/rng.cpp",                 // seeded Philox noise
    "src/pipeline/quantize.cpp",       // `ovis quantize`: weight bytes converted into a file
};

// The layers that must go through ops (core, ops and io are below the boundary).
const std::vector<std::string> kModelLayers = {"src/nn",  "src/text",     "src/vision", "src/llm",
                                               "src/gen", "src/pipeline", "include"};

const std::regex kForbidden(
    R"(#\s*pragma\s+omp|\bomp_[a-z_]+\s*\(|\.f32\s*\(|mutable_f32\s*\(|\bdata\s*<|mutable_data\s*<|\braw\s*\(\s*\)|mutable_raw\s*\()");

struct Violation {
  std::string file;
  int line;
  std::string text;
};

std::vector<Violation> scan() {
  std::vector<Violation> out;
  const fs::path root = OVIS_SOURCE_DIR;
  for (const std::string& layer : kModelLayers) {
    for (const auto& entry : fs::recursive_directory_iterator(root / layer)) {
      if (!entry.is_regular_file()) continue;
      const std::string ext = entry.path().extension().string();
      if (ext != ".cpp" && ext != ".hpp") continue;
      const std::string rel = fs::relative(entry.path(), root).generic_string();
      if (kHostPreparation.count(rel)) continue;
      std::ifstream in(entry.path());
      std::string line, prev1, prev2;
      for (int n = 1; std::getline(in, line); ++n) {
        const bool marked = (line + prev1 + prev2).find("Host sync point") != std::string::npos;
        if (!marked && std::regex_search(line, kForbidden)) out.push_back({rel, n, line});
        prev2 = prev1;
        prev1 = line;
      }
    }
  }
  return out;
}

TEST(SourceRules, ModelCodeComputesOnlyThroughOps) {
  const std::vector<Violation> v = scan();
  for (const Violation& x : v) ADD_FAILURE() << x.file << ":" << x.line << ": " << x.text;
  EXPECT_TRUE(v.empty());
}

TEST(SourceRules, TheListedPreparationFilesExist) {
  for (const std::string& f : kHostPreparation)
    EXPECT_TRUE(fs::is_regular_file(fs::path(OVIS_SOURCE_DIR) / f)) << f;
}

// The rule itself must be able to fail.
TEST(SourceRules, PatternCatchesEachForm) {
  for (const char* bad : {"#pragma omp parallel for", "  #  pragma omp simd", "x.f32()[i] = 0;",
                          "t.mutable_f32()", "t.data<float>()", "t.mutable_data<uint8_t>()",
                          "p = t.raw();", "t.mutable_raw()", "omp_get_num_threads()"})
    EXPECT_TRUE(std::regex_search(std::string(bad), kForbidden)) << bad;
  for (const char* ok : {"ops::add_(c, x, y);", "t.device_ptr()", "draw()", "raw_bytes"})
    EXPECT_FALSE(std::regex_search(std::string(ok), kForbidden)) << ok;
}

}  // namespace
