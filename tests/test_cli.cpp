// The `ovis` binary end to end on the tiny fixture: answers, images, PNG metadata, --help, and
// bad input (one-line error, non-zero exit, no output file).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/image.hpp"
#include "support/cli_fixture.hpp"
#include "support/golden.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

using test::CliRun;

class Cli : public test::CliTest {
 protected:
  Cli() : CliTest("cli") {}
  std::string goldens() const { return test::fixture_path("goldens-00001-of-00002.safetensors"); }
};

TEST_F(Cli, HelpListsEveryCommandAndFlag) {
  CliRun r = run("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* s : {"ask", "generate", "edit", "bench", "--precision", "--threads"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  CliRun g = run("generate --help");
  for (const char* s :
       {"-m", "-p", "-W", "-H", "--steps", "--cfg-scale", "-s", "-o", "-b", "--init-noise"})
    EXPECT_NE(g.out.find(s), std::string::npos) << s;
  CliRun e = run("edit --help");
  EXPECT_NE(e.out.find("--img-cfg-scale"), std::string::npos);
  CliRun a = run("ask --help");
  for (const char* s : {"--image", "-n", "--temp", "--top-k", "--top-p"})
    EXPECT_NE(a.out.find(s), std::string::npos) << s;
}

// The whole-flow benchmarks (t2i, edit) take --warmup (untimed one-step runs first); running
// them needs the real-size models, so only the option itself is checked here.
TEST_F(Cli, BenchTakesAWarmupCountInRange) {
  const CliRun h = run("bench --help");
  EXPECT_EQ(h.code, 0) << h.err;
  for (const char* s : {"--warmup", "t2i", "edit", "--steps"})
    EXPECT_NE(h.out.find(s), std::string::npos) << s;
  for (const char* bad : {"-1", "11", "x"}) {
    const CliRun r = run(std::string("bench t2i --warmup ") + bad);
    EXPECT_NE(r.code, 0) << bad;
    EXPECT_NE(r.err.find("--warmup"), std::string::npos) << r.err;
  }
}

// Options out of range are refused before any weight is built (--repeat -1 used to crash
// bench llm, --text-tokens below the image tokens failed deep inside with a vector size).
TEST_F(Cli, BenchRefusesOptionsOutOfRange) {
  for (const char* args :
       {"bench llm --repeat -1", "bench llm --repeat 0", "bench vae --repeat 0",
        "bench dit --repeat 1001", "bench llm --prompt-tokens 0", "bench llm --decode-tokens 1",
        "bench dit --text-tokens 0", "bench t2i --steps 0", "bench edit --steps 1001"})
    expect_one_line_error(run(args));
}

TEST_F(Cli, AskPrintsTheGoldenAnswer) {
  CliRun r = run("ask --precision f32 " + model() + " --image " + input("cat.png") +
                 " -p 'What is it?' -n 8");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, test::manifest_case("und_single")["greedy_text"].get<std::string>() + "\n");
  EXPECT_NE(r.err.find("prefill"), std::string::npos);
  EXPECT_NE(r.err.find("decode"), std::string::npos);
}

TEST_F(Cli, GenerateWritesTheGoldenImageWithParameters) {
  const fs::path out = dir_ / "t2i.png";
  CliRun r = run("generate --precision f32 " + model() +
                 " -p 'a cute cat' -W 128 -H 128 --steps 4 --cfg-scale 5 --init-noise " +
                 test::golden_file_arg("t2i_128x128.noise") + " -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  Image img = read_image(out.string());
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(img), "t2i_128x128.image_u8"));
  auto text = read_png_text(out.string());
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text[0].first, "parameters");
  EXPECT_NE(text[0].second.find("a cute cat\nSteps: 4"), std::string::npos) << text[0].second;
  EXPECT_NE(text[0].second.find("CFG scale: 5"), std::string::npos);
  EXPECT_NE(text[0].second.find("Size: 128x128"), std::string::npos);
  EXPECT_NE(r.err.find("denoise"), std::string::npos);
}

TEST_F(Cli, EditWritesTheGoldenImage) {
  const fs::path out = dir_ / "edit.png";
  CliRun r =
      run("edit --precision f32 " + model() + " -i " + input("edit_128x160_input.png") +
          " -p 'add a hat to this cat.' --steps 3 --cfg-scale 6 --img-cfg-scale 1.5 --init-noise " +
          test::golden_file_arg("edit_128x160.noise") + " -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(read_image(out.string())),
                                     "edit_128x160.image_u8"));
  EXPECT_NE(r.err.find("warning"), std::string::npos);  // 163x112 -> 160x128
}

TEST_F(Cli, BatchPatternWritesOneFilePerSeedAndJpeg) {
  CliRun r = run("generate " + model() + " -p 'x' -W 32 -H 32 --steps 1 -b 2 -s 5 -o " +
                 (dir_ / "img_%02d.jpg").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir_ / "img_00.jpg"));
  EXPECT_TRUE(fs::exists(dir_ / "img_01.jpg"));
  EXPECT_EQ(read_image((dir_ / "img_01.jpg").string()).width, 32);
}

TEST_F(Cli, BadInputGivesOneLineErrorAndNoOutput) {
  const fs::path out = dir_ / "never.png";
  expect_one_line_error(
      run("generate -m " + (dir_ / "nope").string() + " -p x -o " + out.string()));
  expect_one_line_error(run("generate " + model() + " -p '' -o " + out.string()));
  expect_one_line_error(run("generate " + model() + " -p x -W 4 -o " + out.string()));
  expect_one_line_error(run("generate " + model() + " -p x -o " + (dir_ / "x.gif").string()));
  expect_one_line_error(run("generate " + model() + " -p x --steps 0 -o " + out.string()));
  expect_one_line_error(run("generate " + model() + " -p x -W 64 -H 64 --init-noise " + goldens() +
                            ":t2i_128x128.noise -o " + out.string()));
  expect_one_line_error(run("edit " + model() + " -i " + (dir_ / "missing.png").string() +
                            " -p x -o " + out.string()));
  std::ofstream(dir_ / "garbage.png") << "not an image at all";
  expect_one_line_error(run("edit " + model() + " -i " + (dir_ / "garbage.png").string() +
                            " -p x -o " + out.string()));
  expect_one_line_error(run("ask " + model() + " -p ''"));
  expect_one_line_error(
      run("ask " + model() + " --image " + input("cat.png") + " -p '<image><image>'"));
  expect_one_line_error(run("--precision f16 ask " + model() + " -p hi"));
  EXPECT_FALSE(fs::exists(out));
}

// A request that cannot run is refused before the model is loaded (here: there is none, so an
// error about the model would mean the request was not checked first).
TEST_F(Cli, RequestErrorsComeBeforeTheModelLoads) {
  const std::string none = " -m " + (dir_ / "no-model").string();
  const fs::path out = dir_ / "never.png";
  for (const std::string& args :
       {"generate" + none + " -p x --cfg-scale nan -o " + out.string(),
        "generate" + none + " -p x --cfg-scale 51 -o " + out.string(),
        "generate" + none + " -p x -W 8192 -o " + out.string(),
        "edit" + none + " -i " + input("cat.png") + " -p x --img-cfg-scale inf -o " + out.string(),
        "edit" + none + " -i " + input("cat.png") + " -p x --steps 1001 -o " + out.string(),
        "ask" + none + " -p hi --temp 1 --top-p 2", "ask" + none + " -p hi --top-k -1",
        "ask" + none + " -p hi -n 0"}) {
    CliRun r = run(args);
    expect_one_line_error(r);
    EXPECT_EQ(r.err.find("no-model"), std::string::npos) << args << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(Cli, CorruptCheckpointIsReportedByFile) {
  const fs::path m = dir_ / "model";
  fs::create_directories(m);
  for (const auto& e : fs::directory_iterator(test::fixture_dir()))
    if (e.is_regular_file() && e.path().filename().string().rfind("goldens", 0) != 0)
      fs::copy_file(e.path(), m / e.path().filename());
  // Truncate the second shard: its header promises more bytes than the file has.
  fs::resize_file(m / "model-00002-of-00002.safetensors", 4096);
  CliRun r = run("ask -m " + m.string() + " -p hi");
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("model-00002-of-00002.safetensors"), std::string::npos) << r.err;
  // A missing config is named too.
  fs::remove(m / "config.json");
  CliRun r2 = run("ask -m " + m.string() + " -p hi");
  expect_one_line_error(r2);
  EXPECT_NE(r2.err.find("config.json"), std::string::npos) << r2.err;
}

}  // namespace
