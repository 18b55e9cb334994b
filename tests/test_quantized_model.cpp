// The fixture model written as GGUF files by `ovis quantize` (quantize_model):
//  - bf16: lossless, so every understanding, T2I and edit golden comes out exactly as from the
//    folder (same tokens, byte-identical images);
//  - q8_0: images >= 30 dB PSNR against the f32 goldens;
//  - q8_0 and q4_k quality figures (printed, and recorded in the README): greedy-token agreement
//    and mean KL of the next-token distributions (teacher-forced on the golden answers) over the
//    understanding cases, PSNR of the T2I and edit images.
// Note: the tiny fixture's LLM rows are 48 wide, so its q/k/v/gate/up projections and the
// embedding stay bf16 (not whole blocks); o_proj and down_proj, the ViT, the visual head, the
// refiner and the DiT matrices are quantized (q4_k where rows are multiples of 256, else q8_0).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "io/image.hpp"
#include "ops/ops.hpp"
#include "ovis/ovis.hpp"
#include "pipeline/components.hpp"
#include "pipeline/multimodal.hpp"
#include "pipeline/quantize.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"
#include "support/golden_requests.hpp"
#include "text/conversation.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

// The fixture quantized once per type into a temporary folder for the whole test program.
std::string quantized(DType t) {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("ovis_qmodel_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  const fs::path p = dir / ("tiny-" + weight_type_name(t) + ".gguf");
  if (!fs::exists(p)) {
    QuantizeOptions o;
    o.type = t;
    quantize_model(ModelSource::open(test::fixture_dir()), p.string(), o);
  }
  return p.string();
}

struct Cleanup : ::testing::Environment {
  void TearDown() override {
    fs::remove_all(fs::temp_directory_path() / ("ovis_qmodel_" + std::to_string(::getpid())));
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new Cleanup);

Image fixture_image(const std::string& file) {
  return read_image(test::fixture_path("inputs/" + file));
}

std::vector<int32_t> golden_greedy(const std::string& name) {
  return test::manifest_case(name)["greedy_ids_generate"].get<std::vector<int32_t>>();
}

AskRequest und_request(const std::string& name) {
  const auto& c = test::manifest_case(name);
  AskRequest r;
  r.prompt = c["prompt_query"];
  for (const auto& f : c["images"]) r.images.push_back(fixture_image(f.get<std::string>()));
  r.max_new_tokens = c["max_new_tokens"];
  return r;
}

// Next-token logits [T, V] of the answer `answer` teacher-forced after the und case's prompt.
Tensor answer_logits(const Components& c, const std::string& name,
                     const std::vector<int32_t>& answer) {
  const AskRequest req = und_request(name);
  const FormattedPrompt fp =
      format_understanding_prompt(c.tok, ask_query(req.prompt, int(req.images.size())));
  std::vector<Tensor> visual;
  for (const Image& im : req.images) visual.push_back(c.encode_image(im));
  Tensor prompt = merge_multimodal(fp.input_ids, visual, c.llm, c.vt, c.cfg.multimodal_max_length);
  std::vector<int64_t> prev(answer.begin(), answer.end() - 1);
  Tensor seq = prev.empty() ? prompt : ops::concat_rows(c.ctx, {prompt, c.llm.embed(prev)});
  KvCache cache = c.llm.make_cache(seq.dim(0));
  Tensor h = c.llm.forward(seq, cache);
  return c.llm.logits(h.slice_rows(prompt.dim(0) - 1, seq.dim(0))).to(Device::cpu());
}

struct LlmQuality {
  double agreement = 0, mean_kl = 0;
  int64_t positions = 0;
};

LlmQuality llm_quality(const Components& ref, const Components& q) {
  LlmQuality r;
  double kl_sum = 0;
  int64_t agree = 0;
  for (const char* name : {"und_single", "und_multi", "und_text"}) {
    const auto answer = golden_greedy(name);
    const Tensor a = answer_logits(ref, name, answer), b = answer_logits(q, name, answer);
    const int64_t T = a.dim(0), V = a.dim(1);
    for (int64_t t = 0; t < T; ++t) {
      const float* pa = a.f32() + t * V;
      const float* pb = b.f32() + t * V;
      const double ma = *std::max_element(pa, pa + V), mb = *std::max_element(pb, pb + V);
      double za = 0, zb = 0;
      for (int64_t v = 0; v < V; ++v) {
        za += std::exp(pa[v] - ma);
        zb += std::exp(pb[v] - mb);
      }
      double kl = 0;
      for (int64_t v = 0; v < V; ++v) {
        const double la = pa[v] - ma - std::log(za), lb = pb[v] - mb - std::log(zb);
        kl += std::exp(la) * (la - lb);
      }
      kl_sum += kl;
      agree += (std::max_element(pa, pa + V) - pa) == (std::max_element(pb, pb + V) - pb);
    }
    r.positions += T;
  }
  r.agreement = double(agree) / double(r.positions);
  r.mean_kl = kl_sum / double(r.positions);
  return r;
}

}  // namespace

// bf16 is the fixture's stored type: the GGUF holds the same bytes, so every output is the
// folder's, bit for bit, and therefore every golden passes as it does for the folder.
TEST(QuantizedModel, Bf16GgufReproducesEveryGoldenExactlyAsTheFolder) {
  auto folder = Pipeline::load(test::fixture_dir(), {.precision = Precision::F32});
  auto gguf = Pipeline::load(quantized(DType::BF16), {.precision = Precision::F32});
  for (const char* name : {"und_single", "und_multi", "und_text"}) {
    const AskResult a = gguf->ask(und_request(name)), b = folder->ask(und_request(name));
    EXPECT_EQ(a.tokens, golden_greedy(name)) << name;
    EXPECT_EQ(a.tokens, b.tokens) << name;
    EXPECT_EQ(a.text, b.text) << name;
  }
  for (const char* name : {"t2i_128x128", "t2i_128x192"}) {
    const Image a = gguf->generate(test::golden_t2i_request(name)).image;
    EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(a), std::string(name) + ".image_u8"));
    EXPECT_EQ(a.rgb, folder->generate(test::golden_t2i_request(name)).image.rgb) << name;
  }
  const Image e = gguf->edit(test::golden_edit_request()).image;
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(e), "edit_128x160.image_u8"));
  EXPECT_EQ(e.rgb, folder->edit(test::golden_edit_request()).image.rgb);
}

// A bf16 GGUF also reproduces the folder at BF16 precision (the same kernels read the same bytes).
TEST(QuantizedModel, Bf16GgufEqualsTheFolderInBf16Precision) {
  auto folder = Pipeline::load(test::fixture_dir(), {.precision = Precision::BF16});
  auto gguf = Pipeline::load(quantized(DType::BF16), {.precision = Precision::BF16});
  EXPECT_EQ(gguf->ask(und_request("und_single")).tokens,
            folder->ask(und_request("und_single")).tokens);
  EXPECT_EQ(gguf->generate(test::golden_t2i_request("t2i_128x128")).image.rgb,
            folder->generate(test::golden_t2i_request("t2i_128x128")).image.rgb);
}

TEST(QuantizedModel, F32GgufPassesTheGoldens) {
  auto gguf = Pipeline::load(quantized(DType::F32), {.precision = Precision::F32});
  EXPECT_EQ(gguf->ask(und_request("und_single")).tokens, golden_greedy("und_single"));
  const Image a = gguf->generate(test::golden_t2i_request("t2i_128x128")).image;
  EXPECT_TRUE(test::matches_image_u8(image_to_tensor_u8(a), "t2i_128x128.image_u8"));
}

// q8_0 images against the f32 goldens (>= 30 dB), and the q8_0 / q4_k figures of the README.
TEST(QuantizedModel, QualityAgainstTheReference) {
  const ops::Context ctx = test::cpu_ctx();
  const Components ref(test::fixture_dir(), ctx);
  // For scale: the same measures for the unquantized model run in BF16 precision (the default
  // mode on AVX512_BF16 CPUs). The tiny random model's next-token distributions are sharp and
  // their top-2 margins small, so even bf16 rounding moves them measurably.
  const Components bf16(test::fixture_dir(), test::cpu_ctx(Precision::BF16));
  const LlmQuality base = llm_quality(ref, bf16);
  std::printf("  bf16 precision (no quantization): greedy agreement %.1f%%, mean KL %.2e nats\n",
              100.0 * base.agreement, base.mean_kl);
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    const Components q(quantized(t), ctx);
    const LlmQuality lq = llm_quality(ref, q);
    auto pipe = Pipeline::load(quantized(t), {.precision = Precision::F32});
    const double t2i_a = test::psnr(pipe->generate(test::golden_t2i_request("t2i_128x128")).image,
                                    test::golden("t2i_128x128.image_u8"));
    const double t2i_b = test::psnr(pipe->generate(test::golden_t2i_request("t2i_128x192")).image,
                                    test::golden("t2i_128x192.image_u8"));
    const double edit = test::psnr(pipe->edit(test::golden_edit_request()).image,
                                   test::golden("edit_128x160.image_u8"));
    std::printf(
        "  %s: greedy agreement %.1f%% over %lld positions, mean KL %.2e nats; PSNR t2i "
        "128x128 %.1f dB, t2i 128x192 %.1f dB, edit %.1f dB\n",
        weight_type_name(t).c_str(), 100.0 * lq.agreement, static_cast<long long>(lq.positions),
        lq.mean_kl, t2i_a, t2i_b, edit);
    EXPECT_GT(lq.agreement, 0.5);
    if (t == DType::Q8_0) {
      EXPECT_GE(t2i_a, 30.0);
      EXPECT_GE(t2i_b, 30.0);
      EXPECT_GE(edit, 30.0);
      EXPECT_LT(lq.mean_kl, 0.5);
    }
  }
}

// The quantized file's matrices really are block-quantized (the test above measures something).
TEST(QuantizedModel, FilesHoldTheExpectedTypes) {
  const Components q4(quantized(DType::Q4_K), test::cpu_ctx());
  const auto& e = q4.store.entry("visual_tokenizer.head.0.weight");  // [1020, 256]
  EXPECT_EQ(e.dtype, DType::Q4_K);
  EXPECT_EQ(q4.store.entry("visual_generator.backbone.double_blocks.0.img_attn.qkv.weight").dtype,
            DType::Q8_0);  // rows of 128: q8_0
  EXPECT_EQ(q4.store.entry("llm.model.layers.0.mlp.up_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(q4.store.entry("visual_generator.vae.decoder.conv_in.weight").dtype, DType::BF16);
}
