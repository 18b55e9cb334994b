// Image preprocessing against the reference goldens: Pillow-exact bicubic, smart_resize,
// understanding-side patches (spec §4) and generation-side conditioning images (spec §7.2).
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "core/error.hpp"
#include "gen/latents.hpp"
#include "io/config.hpp"
#include "io/image.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"
#include "support/sha256.hpp"
#include "vision/condition_image.hpp"
#include "vision/preprocess.hpp"
#include "vision/resize.hpp"

using namespace ovis;

namespace {

const PreprocessorConfig& processor() {
  static ModelConfig cfg = load_model_config(test::fixture_dir());
  return cfg.preprocessor;
}

const Image& input(const std::string& name) {
  static std::map<std::string, Image> cache;
  auto it = cache.find(name);
  if (it == cache.end())
    it = cache.emplace(name, read_image(test::fixture_path("inputs/" + name))).first;
  return it->second;
}

// Float32 sums of each row, accumulated in double (the golden's summation order is unknown; a
// double sum rounds to the same float32 unless it lands on a rounding boundary).
Tensor row_sums(const Tensor& t) {
  Tensor s = Tensor::empty({t.dim(0)}, DType::F32);
  for (int64_t r = 0; r < t.dim(0); ++r) {
    double acc = 0;
    for (int64_t c = 0; c < t.dim(1); ++c) acc += t.f32()[r * t.dim(1) + c];
    s.mutable_f32()[r] = float(acc);
  }
  return s;
}

void check_understanding_case(const std::string& case_name, const std::string& file) {
  const auto& mc = test::manifest_case(case_name);
  const Image& img = input(file);
  EXPECT_EQ(img.width, mc["input_size_wh"][0].get<int>());
  EXPECT_EQ(img.height, mc["input_size_wh"][1].get<int>());

  PreprocessedImage p = preprocess_image(img, processor());
  EXPECT_EQ(p.resized.height, mc["smart_resize_hw"][0].get<int>());
  EXPECT_EQ(p.resized.width, mc["smart_resize_hw"][1].get<int>());
  EXPECT_EQ(p.grid_t, mc["grid_thw"][0].get<int>());
  EXPECT_EQ(p.grid_h, mc["grid_thw"][1].get<int>());
  EXPECT_EQ(p.grid_w, mc["grid_thw"][2].get<int>());
  ASSERT_EQ(p.pixel_values.shape(), (Shape{mc["pixel_values_shape"][0].get<int64_t>(),
                                           mc["pixel_values_shape"][1].get<int64_t>()}));

  EXPECT_TRUE(test::equals_golden_u8(image_to_tensor_u8(p.resized), case_name + ".resized_u8"));
  const int64_t n = p.pixel_values.dim(0);
  EXPECT_TRUE(
      test::matches_golden(p.pixel_values.slice_rows(0, 64), case_name + ".pixel_values_first64"));
  EXPECT_TRUE(test::matches_golden(p.pixel_values.slice_rows(n - 64, n),
                                   case_name + ".pixel_values_last64"));
  EXPECT_TRUE(test::matches_golden(row_sums(p.pixel_values), case_name + ".pixel_values_row_sum"));
  EXPECT_EQ(test::sha256_hex(p.pixel_values.raw(), p.pixel_values.nbytes()),
            mc["pixel_values_sha256_f32"].get<std::string>());
}

}  // namespace

TEST(Sha256, KnownDigests) {
  EXPECT_EQ(test::sha256_hex("", 0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(test::sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(test::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(SmartResize, ManifestExamples) {
  const auto& mc = test::manifest_case("pre_gen_conditioning");
  ASSERT_GE(mc["smart_resize_examples"].size(), 1u);
  for (const auto& ex : mc["smart_resize_examples"]) {
    ImageSize s =
        smart_resize(ex["hw"][0].get<int>(), ex["hw"][1].get<int>(), ex["factor"].get<int>(),
                     ex["min_pixels"].get<int64_t>(), ex["max_pixels"].get<int64_t>());
    EXPECT_EQ(s.height, ex["out_hw"][0].get<int>()) << ex.dump();
    EXPECT_EQ(s.width, ex["out_hw"][1].get<int>()) << ex.dump();
  }
}

TEST(SmartResize, EditOutputSizeRule) {
  // spec §7.2 edit: (H, W) = smart_resize(H_in, W_in, factor 32) with the default pixel range.
  EXPECT_EQ(smart_resize(112, 163, 32), (ImageSize{128, 160}));
  EXPECT_EQ(smart_resize(1080, 1920, 32), (ImageSize{736, 1312}));
  const Tensor in = test::golden("edit_128x160.input_u8");
  EXPECT_EQ(smart_resize(int(in.dim(0)), int(in.dim(1)), 32), (ImageSize{128, 160}));
}

TEST(SmartResize, RoundsHalfToEvenAndClipsAspect) {
  // 42 / 28 = 1.5 rounds to 2, 70 / 28 = 2.5 rounds to 2 (Python round).
  EXPECT_EQ(smart_resize(42, 70, 28, 0, 1 << 30), (ImageSize{56, 56}));
  // Aspect ratio > 200: the long side is clipped to 200 x the short side first.
  EXPECT_EQ(smart_resize(28, 28 * 300, 28, 0, int64_t(1) << 40), (ImageSize{28, 5600}));
}

TEST(SmartResize, RejectsImpossibleSizes) {
  EXPECT_THROW(smart_resize(0, 100), Error);
  EXPECT_THROW(smart_resize(100, -1), Error);
  EXPECT_THROW(smart_resize(100, 100, 0), Error);
  EXPECT_THROW(smart_resize(100, 100, 28, 5000, 4000), Error);
  // Pixel budget smaller than one factor x factor cell gives a zero side.
  EXPECT_THROW(smart_resize(1000, 1000, 28, 0, 100), Error);
}

TEST(ResizeBicubic, SameSizeIsIdentityAndErrorsAreClean) {
  const Image& img = input("edit_128x160_input.png");
  Image same = resize_bicubic(img, img.width, img.height);
  EXPECT_EQ(same.rgb, img.rgb);
  EXPECT_THROW(resize_bicubic(img, 0, 10), Error);
  EXPECT_THROW(resize_bicubic(img, 10, kMaxImageSide + 1), Error);
}

TEST(ResizeBicubic, OneAxisOnlyMatchesTwoPassReference) {
  // Width-only and height-only resizes are single passes; composing them in Pillow's order
  // (horizontal first) must equal the two-pass result of the golden-checked path.
  const Image& img = input("edit_128x160_input.png");
  Image h_only = resize_bicubic(img, 100, img.height);
  EXPECT_EQ(h_only.width, 100);
  EXPECT_EQ(h_only.height, img.height);
  Image both = resize_bicubic(img, 100, 77);
  Image composed = resize_bicubic(h_only, 100, 77);
  EXPECT_EQ(both.rgb, composed.rgb);
}

TEST(PreprocessImage, Cat) {
  check_understanding_case("pre_cat", "cat.png");
}
TEST(PreprocessImage, Yak) {
  check_understanding_case("pre_yak", "yak.png");
}

TEST(ConditionImage, AspectRatioCropAndPreshrink) {
  const auto& mc = test::manifest_case("pre_gen_conditioning");
  const Image& cat = input("cat.png");
  for (const auto& target : mc["targets"]) {
    const int h = target["target_hw"][0].get<int>(), w = target["target_hw"][1].get<int>();
    const std::string prefix =
        "pre_gen_conditioning." + std::to_string(h) + "x" + std::to_string(w);
    SCOPED_TRACE(prefix);
    ConditionImage c = process_image_aspectratio(cat, w, h);
    EXPECT_EQ(c.cropped.height, target["cropped_hw"][0].get<int>());
    EXPECT_EQ(c.cropped.width, target["cropped_hw"][1].get<int>());
    EXPECT_TRUE(test::equals_golden_u8(image_to_tensor_u8(c.cropped), prefix + ".cropped_u8"));
    EXPECT_TRUE(test::matches_golden(c.vae_pixel_values, prefix + ".vae_pixel_values"));
    EXPECT_EQ(c.vae_pixel_values.shape(), (Shape{3, h, w}));
    EXPECT_TRUE(test::matches_golden(latent_ids(test::cpu_ctx(), h / 16, w / 16, 0.0f),
                                     prefix + ".img_ids"));

    Image pre = preshrink_for_llm(c.cropped, processor());
    EXPECT_EQ(pre.height, target["preshrink_hw"][0].get<int>());
    EXPECT_EQ(pre.width, target["preshrink_hw"][1].get<int>());
    EXPECT_TRUE(test::equals_golden_u8(image_to_tensor_u8(pre), prefix + ".preshrunk_u8"));
  }
}

TEST(ConditionImage, EditInputChain) {
  // spec §7.2 edit: input -> smart_resize(factor 32) -> Pillow bicubic -> VAE tensor and the
  // LLM pre-shrink of the resized input.
  const Image& in = input("edit_128x160_input.png");
  EXPECT_TRUE(test::equals_golden_u8(image_to_tensor_u8(in), "edit_128x160.input_u8"));
  ImageSize s = smart_resize(in.height, in.width, 32);
  Image resized = resize_bicubic(in, s.width, s.height);
  EXPECT_TRUE(test::equals_golden_u8(image_to_tensor_u8(resized), "edit_128x160.input_resized_u8"));
  ConditionImage c = process_image_aspectratio(resized, s.width, s.height);
  EXPECT_EQ(c.cropped.rgb, resized.rgb);
  EXPECT_TRUE(test::matches_golden(c.vae_pixel_values, "edit_128x160.vae_pixel_values"));
  Image llm = preshrink_for_llm(resized, processor());
  EXPECT_TRUE(
      test::equals_golden_u8(image_to_tensor_u8(llm), "edit_128x160.cond_txt.llm_image_u8"));
  EXPECT_TRUE(
      test::equals_golden_u8(image_to_tensor_u8(llm), "edit_128x160.cond_no_txt.llm_image_u8"));
}

TEST(ConditionImage, CenterCropPadsAndRoundsHalfToEven) {
  Image img = Image::filled(5, 2, 10, 20, 30);
  img.rgb[(1 * 5 + 4) * 3] = 99;  // pixel (x=4, y=1)
  // Width 5 -> 2: offset round(1.5) = 2; height 2 -> 4: pad 1 above, 1 below.
  Image c = center_crop(img, 2, 4);
  ASSERT_EQ(c.width, 2);
  ASSERT_EQ(c.height, 4);
  EXPECT_EQ(c.pixel(0, 0)[0], 0);
  EXPECT_EQ(c.pixel(0, 1)[0], 10);
  EXPECT_EQ(c.pixel(1, 2)[2], 30);
  EXPECT_EQ(c.pixel(1, 3)[1], 0);
  // Width 5 -> 4: offset round(0.5) = 0, so x=4 is cut; height 2 -> 3: pad 0 above, 1 below.
  Image d = center_crop(img, 4, 3);
  EXPECT_EQ(d.pixel(3, 1)[0], 10);
  EXPECT_EQ(d.pixel(3, 2)[0], 0);
  Image e = center_crop(img, 3, 2);  // offset round(1.0) = 1: keeps x = 1..3
  EXPECT_EQ(e.pixel(2, 1)[0], 10);
  Image f = center_crop(img, 2, 2);  // offset round(1.5) = 2: keeps x = 2..3
  EXPECT_EQ(f.pixel(1, 1)[0], 10);
  Image g = center_crop(img, 1, 2);  // offset round(2.0) = 2
  EXPECT_EQ(g.pixel(0, 1)[0], 10);
}
