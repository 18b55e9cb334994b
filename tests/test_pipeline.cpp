// End-to-end pipeline goldens (F32 precision): understanding answers, generation conditions,
// full text-to-image and editing from the golden noise.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.hpp"
#include "gen/vae.hpp"
#include "io/image.hpp"
#include "ops/ops.hpp"
#include "ovis/ovis.hpp"
#include "pipeline/components.hpp"
#include "pipeline/condition.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"
#include "support/golden_requests.hpp"
#include "text/conversation.hpp"
#include "vision/resize.hpp"

using namespace ovis;

namespace {

class PipelineGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pipe_ = Pipeline::load(test::fixture_dir(), {.precision = Precision::F32}).release();
    comps_ = new Components(test::fixture_dir(), test::cpu_ctx());
  }
  static void TearDownTestSuite() {
    delete pipe_;
    delete comps_;
  }
  static Pipeline* pipe_;
  static Components* comps_;
};
Pipeline* PipelineGolden::pipe_ = nullptr;
Components* PipelineGolden::comps_ = nullptr;

std::vector<int32_t> golden_greedy(const std::string& name) {
  std::vector<int32_t> ids;
  for (const auto& v : test::manifest_case(name)["greedy_ids_generate"])
    ids.push_back(v.get<int32_t>());
  return ids;
}

Image fixture_image(const std::string& file) {
  return read_image(test::fixture_path("inputs/" + file));
}

TEST_F(PipelineGolden, AskSingleImageAnswersLikeTheReference) {
  AskRequest req;
  req.prompt = "What is it?";  // the pipeline places the image first: "<image>\nWhat is it?"
  req.images = {fixture_image("cat.png")};
  req.max_new_tokens = int(test::manifest_case("und_single")["max_new_tokens"]);
  std::string streamed;
  req.on_text = [&](std::string_view s) {
    streamed += s;
    return true;
  };
  AskResult r = pipe_->ask(req);
  EXPECT_EQ(r.tokens, golden_greedy("und_single"));
  EXPECT_EQ(r.prompt_tokens, int(test::manifest_case("und_single")["merged_len"]));
  EXPECT_EQ(r.text, test::manifest_case("und_single")["greedy_text"].get<std::string>());
  EXPECT_EQ(streamed, r.text);
}

TEST_F(PipelineGolden, AskTwoImagesAnswersLikeTheReference) {
  AskRequest req;
  req.prompt = "Describe each image.";  // becomes "Image 1: <image>\nImage 2: <image>\n..."
  req.images = {fixture_image("cat.png"), fixture_image("yak.png")};
  req.max_new_tokens = int(test::manifest_case("und_multi")["max_new_tokens"]);
  AskResult r = pipe_->ask(req);
  EXPECT_EQ(r.tokens, golden_greedy("und_multi"));
}

TEST_F(PipelineGolden, AskTextOnlyAnswersLikeTheReference) {
  AskRequest req;
  req.prompt = test::manifest_case("und_text")["prompt_query"].get<std::string>();
  req.max_new_tokens = int(test::manifest_case("und_text")["max_new_tokens"]);
  AskResult r = pipe_->ask(req);
  EXPECT_EQ(r.tokens, golden_greedy("und_text"));
}

TEST_F(PipelineGolden, AskRejectsMarkerImageMismatch) {
  AskRequest req;
  req.prompt = "<image> and <image>?";
  req.images = {fixture_image("cat.png")};
  EXPECT_THROW(pipe_->ask(req), Error);
}

TEST_F(PipelineGolden, TextToImageConditionsMatch) {
  const Image white = Image::filled(128, 128, 255, 255, 255);
  Image llm_image;
  Tensor cond =
      build_condition(*comps_, t2i_condition_query("a cute cat"), white, 128, 128, &llm_image);
  EXPECT_TRUE(test::matches_golden(cond, "t2i_128x128.cond_txt.txt"));
  EXPECT_TRUE(
      test::equals_golden_u8(image_to_tensor_u8(llm_image), "t2i_128x128.cond_txt.llm_image_u8"));
  Tensor uncond = build_condition(*comps_, unconditional_query(), white, 128, 128);
  EXPECT_TRUE(test::matches_golden(uncond, "t2i_128x128.cond_no_both.txt"));
}

TEST_F(PipelineGolden, EditConditionsMatch) {
  const auto& c = test::manifest_case("edit_128x160");
  const int W = c["width"], H = c["height"];
  Image input = fixture_image("edit_128x160_input.png");
  ImageSize sz = smart_resize(input.height, input.width, 32);
  ASSERT_EQ(sz.width, W);
  ASSERT_EQ(sz.height, H);
  Image resized = resize_bicubic(input, W, H);
  const Image white = Image::filled(W, H, 255, 255, 255);
  EXPECT_TRUE(test::matches_golden(build_condition(*comps_, unconditional_query(), white, W, H),
                                   "edit_128x160.cond_no_both.txt"));
  EXPECT_TRUE(test::matches_golden(build_condition(*comps_, unconditional_query(), resized, W, H),
                                   "edit_128x160.cond_no_txt.txt"));
  EXPECT_TRUE(test::matches_golden(
      build_condition(*comps_, edit_condition_query(c["instruction"].get<std::string>()), resized,
                      W, H),
      "edit_128x160.cond_txt.txt"));
}

void run_t2i(Pipeline* pipe, const std::string& name) {
  ImageResult r = pipe->generate(test::golden_t2i_request(name));
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(r.image), name + ".image_u8"));
}

TEST_F(PipelineGolden, TextToImageSquareReproducesTheReferenceImage) {
  run_t2i(pipe_, "t2i_128x128");
}
TEST_F(PipelineGolden, TextToImageWideReproducesTheReferenceImage) {
  run_t2i(pipe_, "t2i_128x192");
}

TEST_F(PipelineGolden, EditReproducesTheReferenceImage) {
  ImageResult r = pipe_->edit(test::golden_edit_request());
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(r.image), "edit_128x160.image_u8"));
  EXPECT_FALSE(r.warnings.empty());  // 163x112 input is edited at 160x128
}

TEST_F(PipelineGolden, GenerateValidatesRequests) {
  GenerateRequest req;
  req.prompt = "";
  EXPECT_THROW(pipe_->generate(req), Error);
  req.prompt = "x";
  req.width = 8;
  EXPECT_THROW(pipe_->generate(req), Error);
  req.width = 128;
  req.steps = 0;
  EXPECT_THROW(pipe_->generate(req), Error);
  req.steps = 1;
  req.cfg_scale = NAN;
  EXPECT_THROW(pipe_->generate(req), Error);
  req.cfg_scale = 5;
  req.height = 128;
  req.init_noise = HostTensor{{4, 3, 3}, std::vector<float>(36, 0.0f)};
  EXPECT_THROW(pipe_->generate(req), Error);
}

TEST(RequestValidation, NeedsNoModel) {
  GenerateRequest g;
  g.prompt = "x";
  EXPECT_NO_THROW(validate(g));
  for (float bad : {-1.0f, 50.5f, NAN, INFINITY}) {
    g.cfg_scale = bad;
    EXPECT_THROW(validate(g), Error) << bad;
  }
  g.cfg_scale = kMaxGuidanceScale;
  EXPECT_NO_THROW(validate(g));
  g.width = 4097;
  EXPECT_THROW(validate(g), Error);
  EditRequest e;
  e.instruction = "x";
  EXPECT_THROW(validate(e), Error);  // no input image
  e.input = Image::filled(32, 32, 0, 0, 0);
  EXPECT_NO_THROW(validate(e));
  e.img_cfg_scale = NAN;
  EXPECT_THROW(validate(e), Error);
  e.img_cfg_scale = 0;
  e.steps = 1001;
  EXPECT_THROW(validate(e), Error);
  SamplerParams sp;
  EXPECT_NO_THROW(validate(sp));
  sp.top_p = 0;
  EXPECT_THROW(validate(sp), Error);
  sp.top_p = 1;
  sp.temperature = NAN;
  EXPECT_THROW(validate(sp), Error);
}

TEST_F(PipelineGolden, SameSeedSameImage) {
  GenerateRequest req;
  req.prompt = "a red square";
  req.width = 64;
  req.height = 48;
  req.steps = 2;
  req.seed = 7;
  ImageResult a = pipe_->generate(req);
  ImageResult b = pipe_->generate(req);
  EXPECT_EQ(a.image.rgb, b.image.rgb);
  req.seed = 8;
  ImageResult c = pipe_->generate(req);
  EXPECT_NE(a.image.rgb, c.image.rgb);
}

// Anonymous resident memory (resident minus file-backed pages): the mmapped weight shards are
// file pages the kernel may drop and fault in again under memory pressure from other processes,
// which moves the total resident set without any allocation.
int64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0, shared = 0;
  statm >> size >> resident >> shared;
  return (resident - shared) * int64_t(sysconf(_SC_PAGESIZE));
}

// Activations come from the caching allocator: after the first run of a workload its blocks are
// reused, so repeating the same requests neither asks the system for memory again nor grows the
// resident set. The resident set is compared over two successive windows of three rounds: growth
// that happens once (a worker thread's first touch of its scratch or of its malloc arena, which
// depends on how a loaded scheduler spreads the chunks: +10 MB once in a CI run) may fall into
// either window, while a leak grows both.
TEST_F(PipelineGolden, RepeatedRequestsReachAMemoryFixedPoint) {
  // khugepaged may collapse blocks that are already mapped into huge pages at any time (more so on
  // a loaded machine), adding resident pages that no allocation asked for: off for this process.
  ASSERT_EQ(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0), 0);
  GenerateRequest g;
  g.prompt = "a red square";
  g.width = 96;
  g.height = 64;
  g.steps = 2;
  EditRequest e;
  e.input = read_image(test::fixture_path("inputs/edit_128x160_input.png"));
  e.instruction = "make it blue";
  e.steps = 2;
  AskRequest a;
  a.prompt = "What is it?";
  a.images = {e.input};
  a.max_new_tokens = 4;
  auto round = [&] {
    pipe_->generate(g);
    pipe_->edit(e);
    pipe_->ask(a);
  };
  round();
  round();
  const MemoryStats m0 = pipe_->memory();
  int64_t rss[3] = {rss_bytes(), 0, 0};
  for (int w = 1; w <= 2; ++w) {
    for (int i = 0; i < 3; ++i) round();
    rss[w] = rss_bytes();
    const MemoryStats m = pipe_->memory();
    std::printf("  window %d: in use %lld, cached %lld, peak %lld bytes; RSS %lld -> %lld bytes\n",
                w, (long long)m.in_use_bytes, (long long)m.cached_bytes, (long long)m.peak_bytes,
                (long long)rss[w - 1], (long long)rss[w]);
    EXPECT_EQ(m.in_use_bytes, m0.in_use_bytes);
    EXPECT_EQ(m.cached_bytes + m.in_use_bytes, m0.cached_bytes + m0.in_use_bytes);
    EXPECT_GT(m.peak_bytes, 0);
  }
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer holds freed host blocks in a quarantine of up to 256 MiB before reusing them,
  // so under it RSS measures the quarantine filling (seen: +6 MiB a window); the allocator's
  // counters above are the check there.
#else
  // Small host allocations (strings, vectors) only.
  EXPECT_LE(std::min(rss[1] - rss[0], rss[2] - rss[1]), int64_t(4) << 20);
#endif
}

}  // namespace

namespace {

// The default bf16 mode against the same f32 goldens. bf16 GEMM inputs (and bf16 latent/CFG
// arithmetic, as the reference on GPU) shift the tiny random model's images measurably, so the
// bound is a PSNR, documented in the README: >= 30 dB for T2I and edit (measured 39.1 / 37.3).
TEST(PipelineBf16, ImagesStayCloseToTheF32Reference) {
  auto pipe = Pipeline::load(test::fixture_dir(), {.precision = Precision::BF16});
  const double t2i = test::psnr(pipe->generate(test::golden_t2i_request("t2i_128x128")).image,
                                test::golden("t2i_128x128.image_u8"));
  const double edit = test::psnr(pipe->edit(test::golden_edit_request()).image,
                                 test::golden("edit_128x160.image_u8"));
  std::printf("  bf16 vs f32 golden: t2i PSNR %.1f dB, edit PSNR %.1f dB\n", t2i, edit);
  EXPECT_GE(t2i, 30.0);
  EXPECT_GE(edit, 30.0);
}

// bf16 greedy tokens are compared with the goldens where the top-2 margin allows in test_llm;
// here the whole ask path runs in bf16 (vision tower, merge, KV-cached decode).
TEST(PipelineBf16, AskRunsAndStreams) {
  auto pipe = Pipeline::load(test::fixture_dir(), {.precision = Precision::BF16});
  AskRequest req;
  req.prompt = "What is it?";
  req.images = {read_image(test::fixture_path("inputs/cat.png"))};
  req.max_new_tokens = 4;
  AskResult r = pipe->ask(req);
  EXPECT_EQ(r.prompt_tokens, int(test::manifest_case("und_single")["merged_len"]));
  EXPECT_LE(r.tokens.size(), 4u);
}

}  // namespace
