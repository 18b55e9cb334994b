// The golden fixture travels with the repository (tests/fixtures/tiny-ovis-u1.tar.xz, unpacked at
// configure time): every file the manifest and the index name is present, and every case of the
// manifest is one this suite runs, so a golden case can be neither missing nor silently skipped.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "support/golden.hpp"

using namespace ovis;

namespace {

// Each manifest case and the test file that checks it.
const std::set<std::string> kCoveredCases = {
    "tokenizer",             // test_tokenizer
    "pre_cat",               // test_preprocess, test_vision
    "pre_yak",               // test_preprocess
    "pre_gen_conditioning",  // test_preprocess
    "vit_cat",               // test_vision
    "und_single",            // test_llm, test_pipeline, test_cli
    "und_multi",             // test_llm, test_pipeline
    "und_text",              // test_llm, test_pipeline
    "t2i_128x128",           // test_llm (conditions), test_dit, test_pipeline, test_cli
    "t2i_128x192",           // test_llm, test_dit, test_pipeline
    "edit_128x160",          // test_llm, test_dit, test_vae, test_pipeline, test_cli
    "dit_t2i",               // test_dit
    "dit_edit",              // test_dit
    "schedule",              // test_dit
    "vae",                   // test_vae
};

TEST(Fixture, EveryManifestCaseIsCovered) {
  std::set<std::string> cases;
  for (const auto& c : test::manifest()["cases"]) cases.insert(c["name"].get<std::string>());
  EXPECT_EQ(cases, kCoveredCases);
}

TEST(Fixture, EveryGoldenAndModelFileIsPresent) {
  namespace fs = std::filesystem;
  for (const char* f :
       {"config.json", "preprocessor_config.json", "tokenizer.json", "model.safetensors.index.json",
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "goldens-00001-of-00002.safetensors", "goldens-00002-of-00002.safetensors",
        "inputs/cat.png", "inputs/yak.png", "inputs/edit_128x160_input.png"})
    EXPECT_TRUE(fs::is_regular_file(test::fixture_path(f))) << f;
  int goldens = 0;
  for (const auto& c : test::manifest()["cases"]) {
    if (!c.contains("goldens")) continue;
    for (const auto& g : c["goldens"]) {
      EXPECT_TRUE(test::has_golden(g["name"].get<std::string>())) << g["name"];
      ++goldens;
    }
  }
  EXPECT_GT(goldens, 100);
}

}  // namespace
