// Hostile model folders through the `ovis` binary: the tiny fixture with one file replaced by a
// hostile one, generated here (deep nesting at 10^5-10^6 levels, absurd ids, 2^31 and 2^62
// values, wrong types). Each must end in exit 1 with one `error:` line naming that file, within
// seconds, under a 4 GB address-space limit (ulimit -v; under ASan, which reserves terabytes of
// shadow, an RSS and allocation-size limit instead) and under 1 GB of peak RSS.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "support/cli_fixture.hpp"
#include "support/golden.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using ovis::test::slurp;

namespace {

constexpr int64_t k2p31 = int64_t(1) << 31;
constexpr int64_t k2p62 = int64_t(1) << 62;

json fixture_json(const std::string& name) {
  return json::parse(slurp(ovis::test::fixture_path(name)));
}

std::string nested(size_t levels) {
  return std::string(levels, '[') + std::string(levels, ']');
}

// A safetensors file: 8-byte little-endian header length, the header, `data` zero bytes.
std::string safetensors_bytes(uint64_t header_len, const std::string& header, size_t data = 0) {
  std::string out(reinterpret_cast<const char*>(&header_len), 8);
  return out + header + std::string(data, '\0');
}

std::string be32(uint32_t x) {
  return {char(x >> 24), char(x >> 16), char(x >> 8), char(x)};
}

// A PNG that stops after an IHDR declaring width x height.
std::string png_header(uint32_t width, uint32_t height) {
  std::string chunk = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  const uint32_t crc =
      uint32_t(crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), uInt(chunk.size())));
  return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + chunk + be32(crc);
}

struct HostileCase {
  const char* name;  // test name
  const char* file;  // the file replaced in the model folder (or the --image input)
  std::function<std::string()> content;
  const char* needle = "";  // a further piece the error must contain
};

std::string config_with(const std::string& pointer, const json& value) {
  json c = fixture_json("config.json");
  c[json::json_pointer(pointer)] = value;
  return c.dump();
}
std::string preprocessor_with(const std::string& pointer, const json& value) {
  json c = fixture_json("preprocessor_config.json");
  c[json::json_pointer(pointer)] = value;
  return c.dump();
}
std::string index_with(const std::string& pointer, const json& value) {
  json c = fixture_json("model.safetensors.index.json");
  c[json::json_pointer(pointer)] = value;
  return c.dump();
}

const char* const kShard = "model-00001-of-00002.safetensors";

std::vector<HostileCase> hostile_cases() {
  return {
      // config.json
      {"ConfigNesting1e5", "config.json", [] { return "{\"llm_config\":" + nested(100000) + "}"; },
       "nested deeper"},
      {"ConfigNesting1e6", "config.json", [] { return nested(1000000); }, "nested deeper"},
      {"ConfigHeadsAndVocab2p31", "config.json",
       [] {
         json c = fixture_json("config.json");
         c["llm_config"]["num_attention_heads"] = k2p31;
         c["llm_config"]["vocab_size"] = k2p31;
         return c.dump();
       },
       "out of range"},
      {"ConfigHidden2p62", "config.json", [] { return config_with("/hidden_size", k2p62); },
       "hidden_size: 4611686018427387904"},
      {"ConfigAxesSum2p62", "config.json",
       [] {
         return config_with("/visual_generator_config/axes_dim", {k2p62, k2p62, k2p62});
       },
       "axes_dim[0]"},
      {"ConfigContext2p31", "config.json",
       [] { return config_with("/visual_generator_config/context_in_dim", k2p31); },
       "context_in_dim"},
      {"ConfigTokenizeFunctionType", "config.json",
       [] { return config_with("/visual_tokenizer_config/tokenize_function", 5); },
       "tokenize_function: expected a string, got an integer"},
      {"ConfigAxesType", "config.json",
       [] { return config_with("/visual_generator_config/axes_dim/1", "x"); },
       "visual_generator_config.axes_dim[1]: expected an integer, got a string"},
      {"ConfigLayersInRangeButAbsent", "config.json",
       [] { return config_with("/llm_config/num_hidden_layers", 1000); }, "config.json"},
      // preprocessor_config.json
      {"PreprocessorNesting1e5", "preprocessor_config.json",
       [] { return "{\"image_mean\":" + nested(100000) + "}"; }, "nested deeper"},
      {"PreprocessorMeanType", "preprocessor_config.json",
       [] {
         return preprocessor_with("/image_mean", {"x", 1, 2});
       },
       "image_mean[0]: expected a number, got a string"},
      {"PreprocessorPixels2p31", "preprocessor_config.json",
       [] { return preprocessor_with("/min_pixels", k2p31); }, "min_pixels"},
      {"PreprocessorPixels2p62", "preprocessor_config.json",
       [] { return preprocessor_with("/max_pixels", k2p62); }, "max_pixels"},
      // tokenizer.json
      {"TokenizerHugeVocabId", "tokenizer.json",
       [] { return std::string(R"({"model":{"vocab":{"a":1073741823},"merges":[]}})"); },
       "id 1073741823 is out of range"},
      {"TokenizerAddedId2p62", "tokenizer.json",
       [] {
         return R"({"model":{"vocab":{"a":0},"merges":[]},"added_tokens":[{"id":)" +
                std::to_string(k2p62) + R"(,"content":"x"}]})";
       },
       "added_tokens[0].id"},
      {"TokenizerNormalizerNesting3e5", "tokenizer.json",
       [] { return "{\"normalizer\":" + nested(300000) + ",\"model\":{}}"; }, "nested deeper"},
      {"TokenizerPreTokenizerNesting1e6", "tokenizer.json",
       [] {
         std::string s = "{\"pre_tokenizer\":";
         for (int i = 0; i < 100000; ++i) s += R"({"type":"Sequence","pretokenizers":[)";
         return s;
       },
       "nested deeper"},
      {"TokenizerVocabType", "tokenizer.json",
       [] { return std::string(R"({"model":{"vocab":{"a":"0"},"merges":[]}})"); },
       "model.vocab.a: expected an integer id, got a string"},
      // model.safetensors.index.json
      {"IndexNesting1e5", "model.safetensors.index.json",
       [] { return "{\"weight_map\":" + nested(100000) + "}"; }, "nested deeper"},
      {"IndexEntryType", "model.safetensors.index.json",
       [] { return index_with("/weight_map/llm.model.norm.weight", 5); }, "is an integer"},
      // a shard's header
      {"ShardHeaderNesting1e6", kShard, [] { return safetensors_bytes(2000000, nested(1000000)); },
       "malformed safetensors header"},
      {"ShardHeaderLength2p62", kShard, [] { return safetensors_bytes(uint64_t(k2p62), "{}"); },
       "exceeds"},
      {"ShardShape2p62", kShard,
       [] {
         const std::string h =
             R"({"llm.model.norm.weight":{"dtype":"BF16","shape":[4611686018427387904,4],)"
             R"("data_offsets":[0,96]}})";
         return safetensors_bytes(h.size(), h, 96);
       },
       "llm.model.norm.weight"},
      {"ShardOffsets2p63", kShard,
       [] {
         const std::string h = R"({"llm.model.norm.weight":{"dtype":"BF16","shape":[48],)"
                               R"("data_offsets":[0,9223372036854775808]}})";
         return safetensors_bytes(h.size(), h, 96);
       },
       "outside"},
      {"ShardShapeType", kShard,
       [] {
         const std::string h =
             R"({"llm.model.norm.weight":{"dtype":"BF16","shape":["48"],"data_offsets":[0,96]}})";
         return safetensors_bytes(h.size(), h, 96);
       },
       "invalid shape"},
      // input images (given with --image)
      {"ImageHugePng", "huge.png", [] { return png_header(100000, 100000); }, "huge.png"},
      {"ImagePixelBudgetPng", "budget.png", [] { return png_header(16000, 16000); }, "budget.png"},
  };
}

class HostileModel : public ::testing::TestWithParam<HostileCase> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ovis_hostile_" + std::to_string(::getpid()) + "_" + GetParam().name);
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    // The fixture's model files, linked (not copied); the hostile file replaces its link.
    for (const auto& e : fs::directory_iterator(ovis::test::fixture_dir()))
      if (e.is_regular_file() && e.path().filename().string().rfind("goldens", 0) != 0)
        fs::create_symlink(e.path(), dir_ / "model" / e.path().filename());
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(HostileModel, OneErrorLineNamingTheFile) {
  const HostileCase& c = GetParam();
  const bool is_image = std::string(c.file).ends_with(".png");
  const fs::path target = is_image ? dir_ / c.file : dir_ / "model" / c.file;
  fs::remove(target);
  std::ofstream(target, std::ios::binary) << c.content();

  const std::string image = is_image ? " --image " + target.string()
                                     : " --image " + ovis::test::fixture_path("inputs/cat.png");
  const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
#if defined(__SANITIZE_ADDRESS__)
  const std::string limits =
      "ASAN_OPTIONS=\"$ASAN_OPTIONS:hard_rss_limit_mb=4096:max_allocation_size_mb=4096\" ";
#else
  const std::string limits = "ulimit -v 4194304 && ";
#endif
  const std::string cmd = "(" + limits + "exec timeout -s KILL 60 " + OVIS_BINARY +
                          " -t 1 ask -m " + (dir_ / "model").string() + image + " -p hi -n 1 >" +
                          out.string() + " 2>" + err.string() + " </dev/null)";
  const auto t0 = std::chrono::steady_clock::now();
  const int status = std::system(cmd.c_str());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rusage ru{};
  getrusage(RUSAGE_CHILDREN, &ru);

  const std::string e = slurp(err);
  ASSERT_TRUE(WIFEXITED(status)) << "killed (signal or timeout): " << e;
  EXPECT_EQ(WEXITSTATUS(status), 1) << e;
  EXPECT_EQ(e.rfind("error: ", 0), 0u) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
  EXPECT_NE(e.find(c.file), std::string::npos) << e;
  EXPECT_NE(e.find(c.needle), std::string::npos) << e;
  EXPECT_LT(seconds, 60.0);
  EXPECT_LT(ru.ru_maxrss, 1024 * 1024) << "peak RSS " << ru.ru_maxrss << " KB";  // < 1 GB
  std::printf("[ %s: %.2f s, peak RSS %ld MB ]\n", c.name, seconds, ru.ru_maxrss / 1024);
}

INSTANTIATE_TEST_SUITE_P(Issue7, HostileModel, ::testing::ValuesIn(hostile_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
