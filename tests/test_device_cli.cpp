// The device side of the `ovis` binary: --device, `ovis devices`, --rng, and ask / generate /
// edit end to end on CUDA (skipped without a GPU). On a machine without a GPU, --device cuda
// must fail with one clear line, whether or not the binary has the CUDA backend.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/image.hpp"
#include "io/safetensors.hpp"
#include "ops/context.hpp"
#include "support/cli_fixture.hpp"
#include "support/cuda.hpp"
#include "support/golden.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

using test::CliRun;

class DeviceCli : public test::CliTest {
 protected:
  DeviceCli() : CliTest("device_cli") {}
};

}  // namespace

TEST_F(DeviceCli, DevicesListsTheCpuAndWhyThereIsNoGpu) {
  const CliRun r = run("devices");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("cpu", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("GiB total"), std::string::npos) << r.out;
  const CliRun j = run("devices --json");
  ASSERT_EQ(j.code, 0) << j.err;
  const nlohmann::json d = nlohmann::json::parse(j.out);
  ASSERT_GE(d["devices"].size(), 1u);
  EXPECT_EQ(d["devices"][0]["device"], "cpu");
  EXPECT_GT(d["devices"][0]["total_memory_bytes"].get<int64_t>(), 0);
  if (ops::cuda_unavailable_reason().empty()) {
    EXPECT_EQ(d["devices"][1]["device"], "cuda:0");
    EXPECT_EQ(d["devices"][1]["default"], true);
  } else {
    EXPECT_TRUE(d.contains("cuda_unavailable"));
    EXPECT_NE(r.out.find("cuda     not available"), std::string::npos) << r.out;
  }
}

TEST_F(DeviceCli, CudaWithoutAGpuFailsWithOneClearLine) {
  if (ops::cuda_unavailable_reason().empty()) GTEST_SKIP() << "a CUDA device is present";
  expect_one_line_error(run("--device cuda ask " + model() + " -p hi"), "cuda:0");
  expect_one_line_error(run("--device cuda:1 generate " + model() + " -p x -W 32 -H 32 -o " +
                            (dir_ / "x.png").string()),
                        "cuda:1");
  expect_one_line_error(run("--device cuda bench llm --prompt-tokens 8"), "cuda:0");
  EXPECT_FALSE(fs::exists(dir_ / "x.png"));
}

TEST_F(DeviceCli, BadDeviceAndRngNamesAreRejected) {
  expect_one_line_error(run("--device gpu ask " + model() + " -p hi"), "--device");
  expect_one_line_error(run("--device cuda:x ask " + model() + " -p hi"), "--device");
  const CliRun r =
      run("generate " + model() + " -p x --rng mt19937 -o " + (dir_ / "x.png").string());
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--rng"), std::string::npos) << r.err;
}

// --rng torch-cuda runs on the CPU too (the host computation of PyTorch's scheme), differs from
// the default generator, and is recorded in the PNG parameters.
TEST_F(DeviceCli, TorchCudaNoiseRunsOnTheCpu) {
  const std::string common = "--device cpu generate " + model() + " -p x -W 32 -H 32 --steps 1 ";
  const CliRun a = run(common + "-s 3 --rng torch-cuda -o " + (dir_ / "a.png").string());
  ASSERT_EQ(a.code, 0) << a.err;
  const CliRun b = run(common + "-s 3 -o " + (dir_ / "b.png").string());
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(read_image((dir_ / "a.png").string()).rgb, read_image((dir_ / "b.png").string()).rgb);
  const auto text = read_png_text((dir_ / "a.png").string());
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text[0].second.find("RNG: torch-cuda"), std::string::npos) << text[0].second;
}

// ---- end to end on the GPU ----

TEST_F(DeviceCli, AskOnCudaPrintsTheGoldenAnswer) {
  OVIS_REQUIRE_CUDA();
  const CliRun r = run("--device cuda --precision f32 ask " + model() + " --image " +
                       input("cat.png") + " -p 'What is it?' -n 8");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, test::manifest_case("und_single")["greedy_text"].get<std::string>() + "\n");
  const CliRun b = run("--device cuda ask " + model() + " -p 'Tell me a story.' -n 4");
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.err.find("bf16"), std::string::npos) << b.err;  // the GPU default precision
}

TEST_F(DeviceCli, GenerateAndEditOnCudaWriteTheGoldenImages) {
  OVIS_REQUIRE_CUDA();
  const fs::path t2i = dir_ / "t2i.png", edit = dir_ / "edit.png";
  CliRun r = run("--device cuda --precision f32 generate " + model() +
                 " -p 'a cute cat' -W 128 -H 128 --steps 4 --cfg-scale 5 --init-noise " +
                 test::golden_file_arg("t2i_128x128.noise") + " -o " + t2i.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(
      test::matches_image_u8(image_to_tensor_u8(read_image(t2i.string())), "t2i_128x128.image_u8"));
  r = run("--device cuda:0 --precision f32 edit " + model() + " -i " +
          input("edit_128x160_input.png") +
          " -p 'add a hat to this cat.' --steps 3 --cfg-scale 6 --img-cfg-scale 1.5 --init-noise " +
          test::golden_file_arg("edit_128x160.noise") + " -o " + edit.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(read_image(edit.string())),
                                     "edit_128x160.image_u8"));
  // The default (bf16) GPU path and the torch-cuda noise run too.
  r = run("--device cuda generate " + model() + " -p x -W 64 -H 64 --steps 2 --rng torch-cuda -o " +
          (dir_ / "bf16.png").string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_image((dir_ / "bf16.png").string()).width, 64);
}
