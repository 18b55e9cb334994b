// Visual tokenizer (spec §4.3-4.5) against the vit_cat goldens of the tiny fixture: end to end from
// cat.png (through vision/preprocess), and stage by stage from each stage's golden input, so that a
// failure points at the stage (patch embedding on pre_cat's stored pixel rows, trunk, head).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <random>

#include "core/error.hpp"
#include "io/config.hpp"
#include "io/image.hpp"
#include "io/safetensors.hpp"
#include "io/weight_binder.hpp"
#include "ops/ops.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"
#include "vision/merge_order.hpp"
#include "vision/pos_embed.hpp"
#include "vision/preprocess.hpp"
#include "vision/visual_tokenizer.hpp"

using namespace ovis;

namespace {

// Manifest tolerance "fwd_f32": max|a-b| <= 1e-4 * max(1, max|ref|).
constexpr double kFwdRel = 1e-4;
// BF16 precision (bf16 GEMM inputs, fp32 accumulation, as the GPU reference) against the fp32
// goldens, relative to max(1, max|ref|): a documented bound for the precision mode, not a golden
// tolerance. Observed on the tiny model (trunk + head from patch_embed_plus_pos): visual_embeds
// max error ~5e-3 relative, head logits ~3e-3.
constexpr double kBf16Rel = 3e-2;

::testing::AssertionResult report(::testing::AssertionResult r) {
  std::cout << "  " << r.message() << "\n";
  return r;
}

::testing::AssertionResult close_rows(const Tensor& actual, const std::string& name, int64_t begin,
                                      int64_t end) {
  EXPECT_EQ(test::golden_tolerance(name).rfind("float32 forward", 0), 0u) << name;
  return report(
      test::close_to(actual, test::golden(name).slice_rows(begin, end), kFwdRel,
                     name + "[" + std::to_string(begin) + ":" + std::to_string(end) + "]"));
}

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_f32()[i] = nd(rng);
  return t;
}

// Rows [begin, end) of x.
Tensor rows(const Tensor& x, int64_t begin, int64_t end) {
  return x.slice_rows(begin, end).clone();
}

// logsumexp of every row of x [M, N].
Tensor row_logsumexp(const Tensor& x) {
  const int64_t M = x.dim(0), N = x.dim(1);
  Tensor r = Tensor::empty({M});
  for (int64_t m = 0; m < M; ++m) {
    const float* p = x.f32() + m * N;
    double mx = -INFINITY, s = 0;
    for (int64_t n = 0; n < N; ++n) mx = std::max(mx, double(p[n]));
    for (int64_t n = 0; n < N; ++n) s += std::exp(double(p[n]) - mx);
    r.mutable_f32()[m] = float(mx + std::log(s));
  }
  return r;
}

const ops::Context kF32 = test::cpu_ctx();

struct Fixture {
  explicit Fixture(ops::Precision p) : vt(VisualTokenizer::load(binder, test::cpu_ctx(p), cfg)) {}
  ModelConfig cfg = load_model_config(test::fixture_dir());
  TensorStore store = TensorStore::open_dir(test::fixture_dir());
  WeightBinder binder{store};
  VisualTokenizer vt;
};

// The fixture's visual tokenizer on a CPU context (F32: what the goldens ran).
const Fixture& fixture(ops::Precision p = ops::Precision::F32) {
  static Fixture f32(ops::Precision::F32), bf16(ops::Precision::BF16);
  return p == ops::Precision::F32 ? f32 : bf16;
}

int grid_dim(int i) {
  return test::manifest_case("vit_cat")["grid_thw"][i].get<int>();
}

}  // namespace

// ---- layout and position embedding ----

TEST(MergeOrder, GroupsEachTwoByTwoCell) {
  const std::vector<PatchPos> p = merge_order_positions(4, 6, 2);
  ASSERT_EQ(p.size(), 24u);
  const int expect[8][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}};
  for (int s = 0; s < 8; ++s) {
    EXPECT_EQ(p[s].row, expect[s][0]) << s;
    EXPECT_EQ(p[s].col, expect[s][1]) << s;
  }
  EXPECT_EQ(p[12].row, 2);  // cell (1, 0)
  EXPECT_EQ(p[12].col, 0);
  EXPECT_EQ(p[23].row, 3);
  EXPECT_EQ(p[23].col, 5);
  EXPECT_THROW(merge_order_positions(5, 6, 2), Error);
}

TEST(PosEmbed, SameSizeIsIdentity) {
  const Tensor g = random_tensor({32 * 32, 5}, 1);
  const Tensor r = bicubic_resize_grid(g, 32, 32, 32, 32);
  for (int64_t i = 0; i < g.numel(); ++i) ASSERT_EQ(r.f32()[i], g.f32()[i]) << i;
}

// Against a direct double-precision evaluation of PyTorch's bicubic (Keys kernel, A = -0.75,
// half-pixel centres, clamped taps), for up- and downscaling and non-square grids.
TEST(PosEmbed, MatchesDirectCubicConvolution) {
  auto kernel = [](double x) {
    const double A = -0.75;
    x = std::fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
  };
  const int sh = 7, sw = 9, C = 3;
  const Tensor g = random_tensor({sh * sw, C}, 2);
  for (auto [dh, dw] : {std::pair{50, 74}, std::pair{4, 6}, std::pair{7, 20}}) {
    const Tensor r = bicubic_resize_grid(g, sh, sw, dh, dw);
    double max_err = 0;
    for (int y = 0; y < dh; ++y)
      for (int x = 0; x < dw; ++x)
        for (int c = 0; c < C; ++c) {
          const double sy = (y + 0.5) * sh / dh - 0.5, sx = (x + 0.5) * sw / dw - 0.5;
          const int fy = int(std::floor(sy)), fx = int(std::floor(sx));
          double acc = 0;
          for (int i = -1; i <= 2; ++i)
            for (int j = -1; j <= 2; ++j) {
              const int yy = std::clamp(fy + i, 0, sh - 1), xx = std::clamp(fx + j, 0, sw - 1);
              acc +=
                  kernel(sy - (fy + i)) * kernel(sx - (fx + j)) * g.f32()[(yy * sw + xx) * C + c];
            }
          max_err = std::max(max_err, std::fabs(acc - r.f32()[(y * dw + x) * C + c]));
        }
    EXPECT_LT(max_err, 1e-5) << dh << "x" << dw;
  }
}

// ---- vit_cat goldens, F32 precision ----

TEST(VitCat, PatchEmbedPlusPosOnStoredPixelRows) {
  const auto& f = fixture();
  const int gh = grid_dim(1), gw = grid_dim(2);
  const int64_t N = int64_t(gh) * gw;
  ASSERT_EQ(test::golden("vit_cat.patch_embed_plus_pos").dim(0), N);
  const Tensor pos = f.vt.backbone().pos_embed(gh, gw);
  for (auto [name, begin] : {std::pair{"pre_cat.pixel_values_first64", int64_t(0)},
                             std::pair{"pre_cat.pixel_values_last64", N - 64}}) {
    Tensor x = f.vt.backbone().patch_embed(test::golden(name));
    ops::add_(kF32, x, rows(pos, begin, begin + 64));
    EXPECT_TRUE(close_rows(x, "vit_cat.patch_embed_plus_pos", begin, begin + 64));
  }
}

TEST(VitCat, TrunkLayers) {
  const auto& f = fixture();
  const int gh = grid_dim(1), gw = grid_dim(2);
  const int n_layers = test::manifest_case("vit_cat")["n_layers"].get<int>();
  ASSERT_EQ(n_layers, f.cfg.visual_tokenizer.backbone.num_layers);
  std::vector<Tensor> outs;
  const Tensor last =
      f.vt.backbone().trunk(test::golden("vit_cat.patch_embed_plus_pos"), gh, gw, &outs);
  ASSERT_EQ(int(outs.size()), n_layers);
  for (int i = 0; i < n_layers; ++i) {
    const std::string name = "vit_cat.layer" + std::to_string(i) + "_out";
    EXPECT_TRUE(report(test::matches_golden(outs[size_t(i)], name)));
  }
  EXPECT_TRUE(test::matches_golden(last, "vit_cat.layer" + std::to_string(n_layers - 1) + "_out"));
}

TEST(VitCat, HeadProbsAndVisualEmbeds) {
  const auto& f = fixture();
  const int n_layers = f.cfg.visual_tokenizer.backbone.num_layers;
  const Tensor logits =
      f.vt.head_logits(test::golden("vit_cat.layer" + std::to_string(n_layers - 1) + "_out"));
  const int64_t M = logits.dim(0);
  ASSERT_EQ(logits.dim(1), f.vt.visual_vocab() - 4);
  EXPECT_TRUE(report(test::matches_golden(rows(logits, 0, 128), "vit_cat.head_logits_first128")));
  EXPECT_TRUE(
      report(test::matches_golden(rows(logits, M - 128, M), "vit_cat.head_logits_last128")));
  EXPECT_TRUE(
      report(test::matches_golden(row_logsumexp(logits), "vit_cat.head_logits_row_logsumexp")));

  Tensor probs = logits.clone();
  ops::softmax_(kF32, probs);
  EXPECT_TRUE(report(test::matches_golden(rows(probs, 0, 64), "vit_cat.probs_first64")));
  EXPECT_TRUE(report(test::matches_golden(rows(probs, M - 64, M), "vit_cat.probs_last64")));
  const Tensor g_arg = test::golden("vit_cat.probs_argmax");
  ASSERT_EQ(g_arg.dtype(), DType::I64);
  ASSERT_EQ(g_arg.numel(), M);
  Tensor pmax = Tensor::empty({M});
  int64_t arg_mismatch = 0;
  for (int64_t m = 0; m < M; ++m) {
    const float* p = probs.f32() + m * probs.dim(1);
    const int64_t a = std::max_element(p, p + probs.dim(1)) - p;
    pmax.mutable_f32()[m] = p[a];
    int64_t want;  // golden data need not be 8-byte aligned inside the shard
    std::memcpy(&want, static_cast<const char*>(g_arg.raw()) + m * 8, 8);
    arg_mismatch += a != want;
  }
  EXPECT_EQ(arg_mismatch, 0);
  EXPECT_TRUE(report(test::matches_golden(pmax, "vit_cat.probs_max")));
  EXPECT_TRUE(report(test::matches_golden(f.vt.embed_probs(probs), "vit_cat.visual_embeds")));
}

// cat.png -> preprocess -> encode, every traced stage against its golden.
TEST(VitCat, EncodeEndToEnd) {
  const auto& f = fixture();
  const PreprocessedImage pre =
      preprocess_image(read_image(test::fixture_path("inputs/cat.png")), f.cfg.preprocessor);
  ASSERT_EQ(pre.grid_h, grid_dim(1));
  ASSERT_EQ(pre.grid_w, grid_dim(2));
  VisionTrace trace;
  const Tensor e = f.vt.encode(pre.pixel_values, pre.grid_h, pre.grid_w, &trace);
  EXPECT_TRUE(
      report(test::matches_golden(trace.patch_embed_plus_pos, "vit_cat.patch_embed_plus_pos")));
  for (size_t i = 0; i < trace.layer_out.size(); ++i)
    EXPECT_TRUE(report(
        test::matches_golden(trace.layer_out[i], "vit_cat.layer" + std::to_string(i) + "_out")));
  const int64_t M = trace.head_logits.dim(0);
  EXPECT_TRUE(report(
      test::matches_golden(rows(trace.head_logits, 0, 128), "vit_cat.head_logits_first128")));
  EXPECT_TRUE(report(
      test::matches_golden(rows(trace.head_logits, M - 128, M), "vit_cat.head_logits_last128")));
  EXPECT_TRUE(report(test::matches_golden(rows(trace.probs, M - 64, M), "vit_cat.probs_last64")));
  EXPECT_TRUE(report(test::matches_golden(e, "vit_cat.visual_embeds")));
}

// The encode() entry point on a synthetic image: same as composing the stages, trace filled.
TEST(VisualTokenizer, EncodeComposesStagesAndFillsTrace) {
  const auto& f = fixture();
  const auto& bc = f.cfg.visual_tokenizer.backbone;
  const int gh = 4, gw = 6;
  const Tensor pixels = random_tensor({gh * gw, 3 * bc.patch_size * bc.patch_size}, 3);
  VisionTrace trace;
  const Tensor e = f.vt.encode(pixels, gh, gw, &trace);
  ASSERT_EQ(e.shape(), (Shape{gh * gw / 4, f.cfg.hidden_size}));
  ASSERT_EQ(int(trace.layer_out.size()), bc.num_layers);
  ASSERT_EQ(trace.probs.shape(), (Shape{gh * gw / 4, f.vt.visual_vocab() - 4}));

  Tensor x = f.vt.backbone().patch_embed(pixels);
  ops::add_(kF32, x, f.vt.backbone().pos_embed(gh, gw));
  EXPECT_TRUE(test::close_to(trace.patch_embed_plus_pos, x, 0, "patch_embed_plus_pos"));
  Tensor p = f.vt.head_logits(f.vt.backbone().trunk(x, gh, gw));
  EXPECT_TRUE(test::close_to(trace.head_logits, p, 0, "head_logits"));
  ops::softmax_(kF32, p);
  EXPECT_TRUE(test::close_to(e, f.vt.embed_probs(p), 0, "visual_embeds"));
  for (int64_t m = 0; m < trace.probs.dim(0); ++m) {
    double s = 0;
    for (int64_t n = 0; n < trace.probs.dim(1); ++n)
      s += trace.probs.f32()[m * trace.probs.dim(1) + n];
    EXPECT_NEAR(s, 1.0, 1e-5);
  }

  EXPECT_THROW(f.vt.encode(pixels, gw, gh + 1, nullptr), Error);  // numel mismatch
  EXPECT_THROW(f.vt.encode(pixels.reshape({gh * gw / 2, -1}), gh / 2, gw, nullptr), Error);
  EXPECT_THROW(f.vt.encode(pixels, 3, 8, nullptr), Error);  // odd grid
}

TEST(VisualTokenizer, VteRowsAreIndicatorEmbeddings) {
  const auto& f = fixture();
  const int64_t V = f.vt.visual_vocab();
  EXPECT_EQ(V, f.cfg.visual_tokenizer.vocab_size);
  const Tensor vte = f.store.get("vte.weight").to_f32();
  for (int64_t r : {int64_t(0), V - 5, V - 1}) {
    const Tensor row = f.vt.vte_row(r);
    ASSERT_EQ(row.shape(), (Shape{1, f.cfg.hidden_size}));
    EXPECT_TRUE(test::close_to(row, rows(vte, r, r + 1), 0, "vte row"));
  }
  EXPECT_THROW(f.vt.vte_row(V), Error);
  EXPECT_THROW(f.vt.vte_row(-1), Error);
}

// ---- BF16 precision (the reference's GPU numerics) vs the fp32 goldens ----

TEST(VitCatBf16, VisualEmbedsWithinBf16Tolerance) {
  const auto& f = fixture(ops::Precision::BF16);
  const int gh = grid_dim(1), gw = grid_dim(2);
  const Tensor feats = f.vt.backbone().trunk(test::golden("vit_cat.patch_embed_plus_pos"), gh, gw);
  Tensor p = f.vt.head_logits(feats);
  EXPECT_TRUE(report(test::close_to(rows(p, 0, 128), test::golden("vit_cat.head_logits_first128"),
                                    kBf16Rel, "bf16 head_logits_first128")));
  ops::softmax_(test::cpu_ctx(ops::Precision::BF16), p);
  EXPECT_TRUE(report(test::close_to(f.vt.embed_probs(p), test::golden("vit_cat.visual_embeds"),
                                    kBf16Rel, "bf16 visual_embeds")));
}

// ---- checkpoint validation ----

namespace {

// A single-file checkpoint with every visual-tokenizer tensor of the fixture, `edit` applied.
std::string write_vision_checkpoint(
    const std::string& name,
    const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  const auto& f = fixture();
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& n : f.store.names())
    if (n.rfind("visual_tokenizer.", 0) == 0 || n == "vte.weight")
      tensors.emplace_back(n, f.store.get(n));
  edit(tensors);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ovis_test_vision_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::create_directories(dir);
  write_safetensors((dir / "model.safetensors").string(), tensors);
  return dir.string();
}

std::string load_error(const std::string& dir, const ModelConfig& cfg) {
  TensorStore store = TensorStore::open_dir(dir);
  WeightBinder wb(store);
  try {
    VisualTokenizer::load(wb, kF32, cfg);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(VisualTokenizerLoad, BindsEverythingUnderItsPrefixes) {
  const auto& f = fixture();
  WeightBinder wb(f.store);
  VisualTokenizer::load(wb, kF32, f.cfg);
  EXPECT_NO_THROW(wb.check_no_extra({"visual_tokenizer.", "vte."}));
}

TEST(VisualTokenizerLoad, WrongShapeNamesFileAndTensor) {
  const auto& f = fixture();
  const std::string bad = "visual_tokenizer.backbone.trunk.blocks.1.mlp.fc2.weight";
  const std::string dir = write_vision_checkpoint("shape", [&](auto& ts) {
    for (auto& [n, t] : ts)
      if (n == bad) t = Tensor::zeros({t.dim(0), t.dim(1) + 1}, DType::BF16);
  });
  const std::string err = load_error(dir, f.cfg);
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find(bad), std::string::npos) << err;
  EXPECT_NE(err.find("expected"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

TEST(VisualTokenizerLoad, MissingTensorIsNamed) {
  const auto& f = fixture();
  const std::string dir = write_vision_checkpoint("missing", [&](auto& ts) {
    std::erase_if(ts, [](const auto& p) { return p.first == "visual_tokenizer.head.1.bias"; });
  });
  const std::string err = load_error(dir, f.cfg);
  EXPECT_NE(err.find("visual_tokenizer.head.1.bias"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

TEST(VisualTokenizerLoad, UnknownExtraTensorIsReported) {
  const auto& f = fixture();
  const std::string dir = write_vision_checkpoint("extra", [&](auto& ts) {
    ts.emplace_back("visual_tokenizer.backbone.trunk.blocks.99.norm_1.weight",
                    Tensor::zeros({4}, DType::BF16));
  });
  TensorStore store = TensorStore::open_dir(dir);
  WeightBinder wb(store);
  VisualTokenizer::load(wb, kF32, f.cfg);
  try {
    wb.check_no_extra({"visual_tokenizer.", "vte."});
    ADD_FAILURE() << "extra tensor not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.99.norm_1.weight"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}
