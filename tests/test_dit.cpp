// Yak DiT, refiner, RoPE, schedule, latent layout, sampler and RNG against the tiny fixture's
// goldens (cases dit_t2i, dit_edit, schedule, t2i_128x128, t2i_128x192, edit_128x160).
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "gen/denoise.hpp"
#include "gen/latents.hpp"
#include "gen/rng.hpp"
#include "gen/schedule.hpp"
#include "gen/timestep.hpp"
#include "gen/yak_dit.hpp"
#include "io/config.hpp"
#include "io/safetensors.hpp"
#include "io/weight_binder.hpp"
#include "ops/ops.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"

using namespace ovis;

namespace {

const ModelConfig& config() {
  static ModelConfig c = load_model_config(test::fixture_dir());
  return c;
}

YakDiT load_dit(ops::Precision p) {
  static TensorStore store = TensorStore::open_dir(test::fixture_dir());
  WeightBinder wb(store);
  YakDiT m = YakDiT::load(wb, test::cpu_ctx(p), config().dit);
  wb.check_no_extra({"visual_generator.backbone."});
  return m;
}

// The fixture's DiT on a CPU context (F32: what the goldens ran).
const YakDiT& dit(ops::Precision p = ops::Precision::F32) {
  static YakDiT f32 = load_dit(ops::Precision::F32), bf16 = load_dit(ops::Precision::BF16);
  return p == ops::Precision::F32 ? f32 : bf16;
}

const ops::Context kF32 = test::cpu_ctx();

// The reference's `pe` layout [L, pairs, 2, 2] = [[cos, −sin], [sin, cos]] of a RoPE table.
Tensor rotation_matrices(const ops::RopeTable& t) {
  const int64_t L = t.cos.dim(0), pairs = t.cos.dim(1);
  Tensor m = Tensor::empty({L, pairs, 2, 2});
  float* o = m.mutable_f32();
  for (int64_t i = 0; i < L * pairs; ++i) {
    const float c = t.cos.f32()[i], s = t.sin.f32()[i];
    o[4 * i + 0] = c;
    o[4 * i + 1] = -s;
    o[4 * i + 2] = s;
    o[4 * i + 3] = c;
  }
  return m;
}

class DitTest : public ::testing::Test {};

// Every traced tensor of one forward against the goldens `<prefix><item>`.
void expect_trace(const DitTrace& tr, const std::string& prefix, const Tensor& velocity) {
  EXPECT_TRUE(test::matches_golden(tr.time_in_out, prefix + "time_in_out"));
  EXPECT_TRUE(test::matches_golden(tr.txt_fea, prefix + "refiner.txt_fea"));
  EXPECT_TRUE(test::matches_golden(tr.cls_y, prefix + "refiner.cls_y"));
  EXPECT_TRUE(test::matches_golden(tr.vector_in_out, prefix + "vector_in_out"));
  EXPECT_TRUE(test::matches_golden(tr.vec, prefix + "vec"));
  const int depth = config().dit.depth, single = config().dit.depth_single_blocks;
  ASSERT_EQ(int(tr.double_img.size()), depth);
  ASSERT_EQ(int(tr.single_out.size()), single);
  for (int i = 0; i < depth; ++i) {
    const std::string p = prefix + "double" + std::to_string(i) + ".";
    EXPECT_TRUE(test::matches_golden(tr.double_img[size_t(i)], p + "img_out"));
    EXPECT_TRUE(test::matches_golden(tr.double_txt[size_t(i)], p + "txt_out"));
  }
  for (int i = 0; i < single; ++i)
    EXPECT_TRUE(test::matches_golden(tr.single_out[size_t(i)],
                                     prefix + "single" + std::to_string(i) + ".out"));
  EXPECT_TRUE(test::matches_golden(tr.final_layer_out, prefix + "final_layer_out"));
  EXPECT_TRUE(test::matches_golden(velocity, prefix + "velocity"));
}

std::vector<float> floats(const nlohmann::json& a) {
  std::vector<float> v;
  for (const auto& x : a) v.push_back(x.get<float>());
  return v;
}

Tensor packed_ids_for(const std::string& gcase) {
  const Tensor noise = test::golden(gcase + ".noise");
  return latent_ids(kF32, noise.dim(1) / 2, noise.dim(2) / 2, 0.0f);
}

}  // namespace

TEST_F(DitTest, ScheduleMatchesAllGoldenEntries) {
  const auto& c = test::manifest_case("schedule");
  ASSERT_FALSE(c["items"].empty());
  for (const auto& item : c["items"]) {
    const std::vector<float> want = floats(item["values"]);
    const std::vector<float> got =
        flow_schedule(item["steps"].get<int>(), item["image_seq_len"].get<int64_t>(), config().dit);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-6)
          << "steps " << item["steps"] << " seq " << item["image_seq_len"] << " index " << i;
  }
}

TEST_F(DitTest, ScheduleReproducesRecordedTimestepsExactly) {
  // edit_128x160 starts at 0.99999994 (float32 reciprocal-multiply in time_shift).
  for (const char* name : {"t2i_128x128", "t2i_128x192", "edit_128x160"}) {
    const auto& c = test::manifest_case(name);
    const std::vector<float> used = floats(c["timesteps_used"]);
    const int64_t n = test::golden(std::string(name) + ".step0.latents_in").dim(0);
    const std::vector<float> ts = flow_schedule(c["steps"].get<int>(), n, config().dit);
    ASSERT_EQ(ts.size(), used.size() + 1) << name;
    for (size_t i = 0; i < used.size(); ++i) EXPECT_EQ(ts[i], used[i]) << name << " step " << i;
    EXPECT_EQ(ts.back(), 0.0f);
  }
}

TEST_F(DitTest, LatentPackingAndIds) {
  for (const char* name : {"t2i_128x128", "t2i_128x192", "edit_128x160"}) {
    const Tensor noise = test::golden(std::string(name) + ".noise");
    const Tensor packed = pack_latents(kF32, noise);
    EXPECT_TRUE(test::close_rel(packed, std::string(name) + ".step0.latents_in", 0.0));
    const Tensor back = unpack_latents(kF32, packed, noise.dim(0), noise.dim(1), noise.dim(2));
    EXPECT_TRUE(test::close_to(back, noise, 0.0, std::string(name) + " unpack(pack)"));
  }
  EXPECT_TRUE(test::matches_golden(latent_ids(kF32, 8, 8, 0.0f), "dit_t2i.in.img_ids"));
  EXPECT_TRUE(test::matches_golden(latent_ids(kF32, 8, 10, 0.0f), "dit_edit.in.img_ids"));
  EXPECT_TRUE(test::matches_golden(latent_ids(kF32, 8, 10, 1.0f), "dit_edit.in.cond_img_ids"));
  EXPECT_TRUE(test::matches_golden(latent_ids(kF32, 8, 10, 1.0f), "edit_128x160.cond_img_ids"));
  EXPECT_THROW(pack_latents(kF32, Tensor::zeros({4, 3, 4})), Error);
}

TEST_F(DitTest, TimestepEmbeddingIsCosFirst) {
  const ops::Context bf16 = test::cpu_ctx(ops::Precision::BF16);
  const Tensor e = timestep_embedding(kF32, 0.0f, 256);
  for (int i = 0; i < 128; ++i) {
    EXPECT_EQ(e.f32()[i], 1.0f);
    EXPECT_EQ(e.f32()[128 + i], 0.0f);
  }
  // BF16 reference rounding: t -> bf16, 1000·t -> bf16.
  const float t = 0.8272286653518677f;
  const Tensor r = timestep_embedding(bf16, t, 256);
  const float t1000 = round_bf16(1000.0f * round_bf16(t));
  EXPECT_FLOAT_EQ(r.f32()[0], std::cos(t1000));
  EXPECT_NE(timestep_embedding(kF32, t, 256).f32()[0], r.f32()[0]);
}

TEST_F(DitTest, ForwardT2IMatchesEveryIntermediate) {
  const auto& c = test::manifest_case("dit_t2i");
  const std::vector<float> tv = floats(c["t_values"]);
  const Tensor img = test::golden("dit_t2i.in.img");
  const Tensor ids = test::golden("dit_t2i.in.img_ids");
  const Tensor txt = test::golden("dit_t2i.in.txt");
  for (size_t k = 0; k < tv.size(); ++k) {
    DitTrace tr;
    const Tensor v = dit().forward(img, ids, txt, tv[k], nullptr, nullptr, &tr);
    EXPECT_EQ(v.dim(0), img.dim(0));
    EXPECT_EQ(v.dim(1), config().dit.out_channels);
    if (k == 0) {
      EXPECT_TRUE(test::matches_golden(rotation_matrices(tr.pe), "dit_t2i.pe"));
    }
    expect_trace(tr, "dit_t2i.t" + std::to_string(k) + ".", v);
  }
}

TEST_F(DitTest, ForwardEditWithConditioningImage) {
  const float t = test::manifest_case("dit_edit")["t_value"].get<float>();
  const Tensor img = test::golden("dit_edit.in.img");
  const Tensor ids = test::golden("dit_edit.in.img_ids");
  const Tensor txt = test::golden("dit_edit.in.txt");
  const Tensor cimg = test::golden("dit_edit.in.cond_img");
  const Tensor cids = test::golden("dit_edit.in.cond_img_ids");
  DitTrace tr;
  const Tensor v = dit().forward(img, ids, txt, t, &cimg, &cids, &tr);
  EXPECT_TRUE(test::matches_golden(rotation_matrices(tr.pe), "dit_edit.pe"));
  expect_trace(tr, "dit_edit.", v);
}

// BF16 precision is the fast path (bf16 GEMM inputs, fp32 accumulation); there are no bf16
// goldens, so this is a smoke test against the F32 golden at t = 1 (where the bf16 timestep
// rounding is exact): observed ~2.4e-3 relative.
TEST_F(DitTest, Bf16PrecisionStaysNearF32Golden) {
  const float t = floats(test::manifest_case("dit_t2i")["t_values"])[0];
  ASSERT_EQ(t, round_bf16(t));
  const Tensor v = dit(ops::Precision::BF16)
                       .forward(test::golden("dit_t2i.in.img"), test::golden("dit_t2i.in.img_ids"),
                                test::golden("dit_t2i.in.txt"), t);
  EXPECT_TRUE(test::close_rel(v, "dit_t2i.t0.velocity", 1e-2));
}

TEST_F(DitTest, ForwardRejectsBadShapes) {
  const Tensor img = test::golden("dit_t2i.in.img");
  const Tensor ids = test::golden("dit_t2i.in.img_ids");
  EXPECT_THROW(dit().forward(img, ids, Tensor::zeros({5, 7}), 0.5f), Error);
  EXPECT_THROW(dit().forward(img, Tensor::zeros({3, 3}), test::golden("dit_t2i.in.txt"), 0.5f),
               Error);
}

TEST_F(DitTest, LoadReportsShapeMismatchWithTensorName) {
  TensorStore store = TensorStore::open_dir(test::fixture_dir());
  WeightBinder wb(store);
  DitConfig bad = config().dit;
  bad.context_in_dim += 1;
  try {
    YakDiT::load(wb, kF32, bad);
    FAIL() << "expected a shape error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("txt_in.input_embedder.weight"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find(".safetensors"), std::string::npos) << e.what();
  }
}

// The whole Euler + CFG chain from the golden noise. At every step the chain's own latents and
// DiT velocities are compared with the golden step records (all at the gen_latents tolerance),
// then the final latents.
class T2IChain : public DitTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(T2IChain, StepsAndFinalLatents) {
  const std::string name = GetParam();
  const auto& c = test::manifest_case(name);
  const Tensor noise = pack_latents(kF32, test::golden(name + ".noise"));
  const std::vector<float> ts = flow_schedule(c["steps"].get<int>(), noise.dim(0), config().dit);
  int progress = 0, inspected = 0;
  const Tensor out = denoise_t2i(
      dit(), noise, packed_ids_for(name), test::golden(name + ".cond_txt.txt"),
      test::golden(name + ".cond_no_both.txt"), ts, c["txt_cfg"].get<float>(),
      [&](int step, int total) {
        EXPECT_EQ(step, ++progress);
        EXPECT_EQ(total, c["steps"].get<int>());
      },
      [&](int step, const Tensor& x, const std::vector<Tensor>& v, const Tensor&) {
        EXPECT_EQ(step, inspected++);
        ASSERT_EQ(v.size(), 2u);
        const std::string p = name + ".step" + std::to_string(step) + ".";
        EXPECT_TRUE(test::matches_golden(x, p + "latents_in"));
        EXPECT_TRUE(test::matches_golden(v[0], p + "v_cond"));
        EXPECT_TRUE(test::matches_golden(v[1], p + "v_uncond"));
      });
  EXPECT_EQ(progress, c["steps"].get<int>());
  EXPECT_EQ(inspected, c["steps"].get<int>());
  EXPECT_TRUE(test::matches_golden(out, name + ".final_latents_packed"));
  // The chain works on its own copy of the noise.
  EXPECT_TRUE(test::close_rel(noise, name + ".step0.latents_in", 0.0));
}

INSTANTIATE_TEST_SUITE_P(Goldens, T2IChain, ::testing::Values("t2i_128x128", "t2i_128x192"));

TEST_F(DitTest, EditStepsAndFinalLatents) {
  const std::string name = "edit_128x160";
  const auto& c = test::manifest_case(name);
  const float txt_cfg = c["txt_cfg"].get<float>(), img_cfg = c["img_cfg"].get<float>();
  const Tensor noise = pack_latents(kF32, test::golden(name + ".noise"));
  const std::vector<float> ts = flow_schedule(c["steps"].get<int>(), noise.dim(0), config().dit);
  int inspected = 0;
  const Tensor out = denoise_edit(
      dit(), noise, packed_ids_for(name), test::golden(name + ".cond_txt.txt"),
      test::golden(name + ".cond_no_txt.txt"), test::golden(name + ".cond_no_both.txt"),
      test::golden(name + ".cond_latents_packed"), test::golden(name + ".cond_img_ids"), ts,
      txt_cfg, img_cfg, {},
      [&](int step, const Tensor& x, const std::vector<Tensor>& v, const Tensor& guided) {
        EXPECT_EQ(step, inspected++);
        ASSERT_EQ(v.size(), 3u);
        const std::string p = name + ".step" + std::to_string(step) + ".";
        EXPECT_TRUE(test::matches_golden(x, p + "latents_in"));
        EXPECT_TRUE(test::matches_golden(v[0], p + "v_cond"));
        EXPECT_TRUE(test::matches_golden(v[2], p + "v_no_txt"));
        // Fixture disagreement: the golden `v_no_both` holds the GUIDED velocity
        // v_nb + img_cfg·(v_nt − v_nb) + txt_cfg·(v_c − v_nt), not the raw no-both pass
        // (latents_in + dt·golden v_no_both reproduces the next step's latents_in to ~2e-7, and
        // no single DiT pass matches it). The raw v_nb is checked through this combination and
        // through the final latents.
        EXPECT_TRUE(test::matches_golden(guided, p + "v_no_both"));
      });
  EXPECT_EQ(inspected, c["steps"].get<int>());
  EXPECT_TRUE(test::matches_golden(out, name + ".final_latents_packed"));
}

TEST_F(DitTest, GuidanceFormulas) {
  const Tensor c = Tensor::from_vector({1.0f, 2.0f}, {1, 2});
  const Tensor u = Tensor::from_vector({0.5f, -1.0f}, {1, 2});
  const Tensor n = Tensor::from_vector({0.25f, 4.0f}, {1, 2});
  Tensor img = Tensor::from_vector({10.0f, 20.0f}, {1, 2}), g = Tensor::empty({1, 2});
  ops::guided_euler_step_(kF32, img, {c, u}, ops::Guidance::T2I, 5.0f, 0.0f, -0.5f, &g);
  EXPECT_FLOAT_EQ(g.f32()[0], 0.5f + 5.0f * 0.5f);
  EXPECT_FLOAT_EQ(g.f32()[1], -1.0f + 5.0f * 3.0f);
  EXPECT_FLOAT_EQ(img.f32()[0], 10.0f - 0.5f * g.f32()[0]);
  EXPECT_FLOAT_EQ(img.f32()[1], 20.0f - 0.5f * g.f32()[1]);
  ops::guided_euler_step_(kF32, img, {c, u, n}, ops::Guidance::Edit, 6.0f, 1.5f, 0.0f,
                          &g);  // v_c, v_nb, v_nt
  EXPECT_FLOAT_EQ(g.f32()[0], 0.5f + 1.5f * (0.25f - 0.5f) + 6.0f * (1.0f - 0.25f));
  EXPECT_FLOAT_EQ(g.f32()[1], -1.0f + 1.5f * (4.0f + 1.0f) + 6.0f * (2.0f - 4.0f));
}

TEST(Rng, PhiloxKnownAnswers) {
  // Random123 known-answer vectors for philox4x32_10.
  using A4 = std::array<uint32_t, 4>;
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (A4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}),
            (A4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (A4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Rng, SameSeedSameNoiseAcrossThreadCounts) {
  const int before = omp_get_max_threads();
  const Shape shape = {4, 128, 130};  // large enough to run in parallel; numel % 4 == 0 not needed
  omp_set_num_threads(1);
  const Tensor a = gaussian_noise(shape, 42);
  omp_set_num_threads(2);
  const Tensor b = gaussian_noise(shape, 42);
  omp_set_num_threads(before);
  const Tensor odd = gaussian_noise({3, 5, 7}, 42);  // prefix property, tail block partial
  ASSERT_EQ(a.numel(), b.numel());
  int64_t diff = 0;
  for (int64_t i = 0; i < a.numel(); ++i) diff += a.f32()[i] != b.f32()[i];
  EXPECT_EQ(diff, 0);
  for (int64_t i = 0; i < odd.numel(); ++i) EXPECT_EQ(odd.f32()[i], a.f32()[i]);
  const Tensor c = gaussian_noise(shape, 43);
  int64_t same = 0;
  for (int64_t i = 0; i < a.numel(); ++i) same += a.f32()[i] == c.f32()[i];
  EXPECT_LT(same, a.numel() / 50);
}

TEST(Rng, StandardNormalMoments) {
  const Tensor x = gaussian_noise({1 << 18}, 7);
  double s = 0, s2 = 0;
  int64_t beyond3 = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = x.f32()[i];
    ASSERT_TRUE(std::isfinite(v));
    ASSERT_EQ(float(v), round_bf16(float(v)));
    s += v;
    s2 += v * v;
    beyond3 += std::fabs(v) > 3.0;
  }
  const double n = double(x.numel()), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sd, 1.0, 0.01);
  EXPECT_NEAR(double(beyond3) / n, 0.0027, 0.0006);
}

TEST(Latents, PositionIds) {
  Tensor ids = ovis::latent_ids(kF32, 2, 3, 1.0f);
  ASSERT_EQ(ids.shape(), (ovis::Shape{6, 3}));
  const float expected[] = {1, 0, 0, 1, 0, 1, 1, 0, 2, 1, 1, 0, 1, 1, 1, 1, 1, 2};
  for (int i = 0; i < 18; ++i) EXPECT_EQ(ids.f32()[i], expected[i]) << i;
  EXPECT_THROW(ovis::latent_ids(kF32, 0, 3, 0.0f), ovis::Error);
}
