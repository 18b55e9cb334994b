// `ovis quantize` and `-m FILE.gguf` end to end: the file it writes loads in ask/generate/edit/
// bench, it refuses to overwrite its input, and damaged or foreign GGUF files give one-line
// errors naming the file and the key or tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/gguf.hpp"
#include "pipeline/model_source.hpp"
#include "support/cli_fixture.hpp"
#include "support/golden.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

using test::CliRun;

class CliGguf : public test::CliTest {
 protected:
  CliGguf() : CliTest("cligguf") {}
  std::string path(const std::string& f) const { return (dir_ / f).string(); }
  // A copy of the fixture as GGUF with `edit` applied to the tensor list (name -> keep?).
  void write_variant(const std::string& out, const std::string& arch, const std::string& drop,
                     const std::string& reshape) {
    const ModelSource src = ModelSource::open(test::fixture_dir());
    const TensorStore store = src.tensors();
    GgufWriter w(out);
    w.set_string(kGgufKeyArchitecture, arch);
    w.set_string(kGgufKeyConfig, src.config_json());
    w.set_string(kGgufKeyPreprocessor, src.preprocessor_json());
    w.set_string(kGgufKeyTokenizer, src.tokenizer_json());
    std::vector<std::string> names;
    for (const auto& n : store.names())
      if (n != drop) names.push_back(n);
    for (const auto& n : names) {
      Shape s = store.entry(n).shape;
      if (n == reshape) s = {s[1], s[0]};
      w.add_tensor(n, s, store.entry(n).dtype);
    }
    for (const auto& n : names) {
      const Tensor t = store.get(n);
      w.write_tensor_data(t.raw(), t.nbytes());
    }
    w.finish();
  }
};

}  // namespace

TEST_F(CliGguf, QuantizeThenAskGenerateEditAndBench) {
  const std::string q = path("tiny-q8_0.gguf");
  CliRun r = run("quantize -m " + test::fixture_dir() + " -o " + q + " --type q8_0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("wrote " + q), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Q8_0"), std::string::npos) << r.err;
  EXPECT_TRUE(is_gguf_file(q));
  r = run("-q ask -m " + q + " --image " + test::fixture_path("inputs/cat.png") +
          " -p \"What is it?\" -n 3");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  r = run("-q generate -m " + q + " -p \"a cat\" -W 64 -H 64 --steps 2 -o " + path("g.png"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(path("g.png")));
  r = run("-q edit -m " + q + " -i " + test::fixture_path("inputs/edit_128x160_input.png") +
          " -p \"add a hat\" --steps 1 -o " + path("e.png"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(path("e.png")));
  // bench on the file's weights: bench builds the real Ovis-U1-3B shapes, so the tiny model's
  // file is rejected naming a tensor.
  r = run("bench llm -m " + q + " --prompt-tokens 4 --decode-tokens 2");
  expect_one_line_error(r, "has shape");
}

TEST_F(CliGguf, QuantizeWithRulesAndProgress) {
  const std::string q = path("rules.gguf");
  CliRun r = run("quantize -m " + test::fixture_dir() + " -o " + q +
                 " --type bf16 --tensor-type-rules \"visual_tokenizer\\.head\\.0=q4_k\"");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("quantize"), std::string::npos) << r.err;  // the progress bar
  auto f = GgufFile::open(q);
  EXPECT_EQ(f->entries().at("visual_tokenizer.head.0.weight").dtype, DType::Q4_K);
  EXPECT_EQ(f->entries().at("llm.model.norm.weight").dtype, DType::BF16);
  EXPECT_EQ(*f->get_string("general.architecture"), "ovis-u1");
}

TEST_F(CliGguf, QuantizeRefusesToOverwriteItsInput) {
  const std::string q = path("m.gguf");
  ASSERT_EQ(run("-q quantize -m " + test::fixture_dir() + " -o " + q + " --type bf16").code, 0);
  const auto before = fs::file_size(q);
  expect_one_line_error(run("quantize -m " + q + " -o " + q + " --type q8_0"),
                        "refusing to overwrite");
  EXPECT_EQ(fs::file_size(q), before);
  expect_one_line_error(
      run("quantize -m " + test::fixture_dir() + " -o " +
          test::fixture_path("model-00001-of-00002.safetensors") + " --type q8_0"),
      "refusing to overwrite");
}

TEST_F(CliGguf, BadQuantizeArguments) {
  expect_one_line_error(
      run("quantize -m " + test::fixture_dir() + " -o " + path("x.gguf") + " --type q3_k"),
      "unknown type 'q3_k'");
  expect_one_line_error(run("quantize -m " + test::fixture_dir() + " -o " + path("x.gguf") +
                            " --type q8_0 --tensor-type-rules \"([=q8_0\""),
                        "bad regular expression");
  expect_one_line_error(
      run("quantize -m " + path("nope") + " -o " + path("x.gguf") + " --type q8_0"),
      "no such folder");
  // A folder as the output is refused before anything is written.
  fs::create_directory(path("out-folder"));
  expect_one_line_error(
      run("quantize -m " + test::fixture_dir() + " -o " + path("out-folder") + " --type q8_0"),
      "is a folder");
  EXPECT_TRUE(fs::is_empty(path("out-folder")));
  EXPECT_FALSE(fs::exists(path("x.gguf")));
}

TEST_F(CliGguf, DamagedOrForeignFilesNameTheProblem) {
  const std::string img = test::fixture_path("inputs/cat.png");
  write_variant(path("llama.gguf"), "llama", "", "");
  expect_one_line_error(run("ask -m " + path("llama.gguf") + " -p hi"),
                        "'general.architecture' is 'llama', expected 'ovis-u1'");
  write_variant(path("missing.gguf"), "ovis-u1", "llm.model.norm.weight", "");
  expect_one_line_error(run("ask -m " + path("missing.gguf") + " -p hi"),
                        "missing tensor 'llm.model.norm.weight'");
  write_variant(path("shape.gguf"), "ovis-u1", "", "llm.model.layers.1.mlp.down_proj.weight");
  expect_one_line_error(run("ask -m " + path("shape.gguf") + " -p hi"),
                        "tensor 'llm.model.layers.1.mlp.down_proj.weight' has shape [128, 48]");
  // Truncated: the last tensor's data is cut off.
  const std::string t = path("trunc.gguf");
  ASSERT_EQ(run("-q quantize -m " + test::fixture_dir() + " -o " + t + " --type q8_0").code, 0);
  fs::resize_file(t, fs::file_size(t) - 4096);
  expect_one_line_error(run("ask -m " + t + " -p hi"), "lies outside the file's data section");
  // Not a GGUF at all.
  std::ofstream(path("junk.gguf")) << "hello";
  expect_one_line_error(run("ask -m " + path("junk.gguf") + " -p hi"),
                        "not a model folder or a GGUF");
}
