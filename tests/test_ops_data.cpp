// The data-movement, statistics, RoPE-table, convolution-prologue and diffusion ops against naive
// references (test_ops.cpp covers GEMM, attention, norms and activations).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.hpp"
#include "ops/ops.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"

using namespace ovis;

namespace {

const ops::Context C = test::cpu_ctx();

Tensor randn(const Shape& s, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_f32()[i] = d(g);
  return t;
}

TEST(OpsData, PermuteMatchesIndexArithmetic) {
  const Tensor x = randn({2, 3, 4, 5, 2}, 1);
  const std::vector<int> perm = {3, 0, 4, 2, 1};
  const Tensor y = ops::permute(C, x, perm);
  ASSERT_EQ(y.shape(), (Shape{5, 2, 2, 4, 3}));
  int64_t idx[5];
  for (int64_t o = 0; o < y.numel(); ++o) {
    int64_t r = o;
    for (int d = 4; d >= 0; --d) {
      idx[d] = r % y.dim(d);
      r /= y.dim(d);
    }
    int64_t in[5];
    for (int d = 0; d < 5; ++d) in[perm[size_t(d)]] = idx[d];
    const int64_t src = (((in[0] * 3 + in[1]) * 4 + in[2]) * 5 + in[3]) * 2 + in[4];
    ASSERT_EQ(y.f32()[o], x.f32()[src]) << o;
  }
  // 2-D transpose and its inverse.
  const Tensor m = randn({7, 9}, 2);
  const Tensor back = ops::permute(C, ops::permute(C, m, {1, 0}), {1, 0});
  EXPECT_TRUE(test::close_to(back, m, 0, "transpose twice"));
  EXPECT_THROW(ops::permute(C, m, {0, 0}), Error);
}

TEST(OpsData, CopyAndCastConvertBetweenFloatTypes) {
  const Tensor x = randn({5, 7}, 3, 3.0f);
  const Tensor b = ops::cast(C, x, DType::BF16);
  const Tensor h = ops::cast(C, x, DType::F16);
  for (int64_t i = 0; i < x.numel(); ++i) {
    EXPECT_EQ(b.data<uint16_t>()[i], f32_to_bf16(x.f32()[i]));
    EXPECT_EQ(h.data<uint16_t>()[i], f32_to_f16(x.f32()[i]));
  }
  EXPECT_TRUE(test::close_to(ops::cast(C, b, DType::F32), x.to_dtype(DType::BF16).to_f32(), 0,
                             "bf16 -> f32"));
  // Into a view: rows 2..4 of a bigger tensor.
  Tensor dst = Tensor::zeros({6, 7});
  Tensor rows = dst.slice_rows(2, 4);
  ops::copy_(C, rows, x.slice_rows(0, 2));
  EXPECT_EQ(dst.f32()[2 * 7 + 3], x.f32()[3]);
  EXPECT_EQ(dst.f32()[1 * 7 + 3], 0.0f);
  EXPECT_THROW(ops::copy_(C, rows, x), Error);  // numel mismatch
}

TEST(OpsData, RoundBf16MatchesScalarRounding) {
  Tensor x = randn({1000}, 4, 10.0f);
  const Tensor ref = x.clone();
  ops::round_bf16_(C, x);
  for (int64_t i = 0; i < x.numel(); ++i) EXPECT_EQ(x.f32()[i], round_bf16(ref.f32()[i]));
}

TEST(OpsData, AffineClampModulateGatedAdd) {
  Tensor y = Tensor::from_vector({-3, -1, 0, 2}, {2, 2});
  ops::affine_(C, y, 2.0f, 0.5f);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{-5.5f, -1.5f, 0.5f, 4.5f}));
  ops::clamp_(C, y, -2.0f, 1.0f);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{-2.0f, -1.5f, 0.5f, 1.0f}));
  // Views into one modulation row [1, 4] = (shift | scale) chunks.
  const Tensor mod = Tensor::from_vector({1, 2, 0.5f, -1}, {1, 4});
  const Tensor flat = mod.reshape({4});
  const Tensor m = ops::modulate(C, y, flat.slice_rows(0, 2), flat.slice_rows(2, 4));
  EXPECT_EQ(m.to_vector(), (std::vector<float>{-2.0f, 2.0f, 1.75f, 2.0f}));
  Tensor acc = Tensor::zeros({2, 2});
  const Tensor gate = flat.slice_rows(2, 4);
  ops::gated_add_(C, acc, y, &gate);
  EXPECT_EQ(acc.to_vector(), (std::vector<float>{-1.0f, 1.5f, 0.25f, -1.0f}));
}

TEST(OpsData, SlicesConcatsCropsAndTiles) {
  const Tensor x = randn({3, 5}, 5);
  const Tensor s = ops::slice_cols(C, x, 1, 4);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(s.f32()[r * 3 + c], x.f32()[r * 5 + 1 + c]);
  // bf16 tensors go through the layout ops unchanged.
  const Tensor xb = ops::cast(C, x, DType::BF16);
  const Tensor cb = ops::concat_cols(C, {xb, ops::slice_cols(C, xb, 0, 2)});
  EXPECT_EQ(cb.dtype(), DType::BF16);
  EXPECT_EQ(cb.data<uint16_t>()[5], xb.data<uint16_t>()[0]);
  EXPECT_EQ(ops::concat_rows(C, {xb, xb}).dim(0), 6);

  const Tensor img = randn({2, 6, 7}, 6);
  const Tensor cr = ops::crop(C, img, 1, 4, 2, 7);
  ASSERT_EQ(cr.shape(), (Shape{2, 3, 5}));
  EXPECT_EQ(cr.f32()[(1 * 3 + 2) * 5 + 4], img.f32()[(1 * 6 + 3) * 7 + 6]);
  EXPECT_THROW(ops::crop(C, img, 0, 7, 0, 1), Error);

  Tensor out = Tensor::zeros({2, 6, 7});
  const Tensor tile = randn({2, 3, 4}, 7);
  ops::accumulate_tile_(C, out, tile, 2, 1, {0.5f, 1.0f, 0.25f}, {1, 2, 3, 4});
  EXPECT_FLOAT_EQ(out.f32()[(1 * 6 + 4) * 7 + 4], 0.25f * 4 * tile.f32()[(1 * 3 + 2) * 4 + 3]);
  EXPECT_EQ(out.f32()[0], 0.0f);
  EXPECT_THROW(ops::accumulate_tile_(C, out, tile, 4, 4, {1, 1, 1}, {1, 1, 1, 1}), Error);

  const Tensor ids = ops::grid_positions(C, 2, 3, 1.0f);
  EXPECT_EQ(ids.to_vector(),
            (std::vector<float>{1, 0, 0, 1, 0, 1, 1, 0, 2, 1, 1, 0, 1, 1, 1, 1, 1, 2}));
}

TEST(OpsData, EmbeddingReadsEveryStoredDtypeAndChecksIds) {
  const Tensor table = randn({10, 6}, 8);
  for (DType t : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor stored = table.to_dtype(t);
    const Tensor e = ops::embedding(C, stored, {7, 0, 7});
    ASSERT_EQ(e.shape(), (Shape{3, 6}));
    const Tensor ref = stored.to_f32();
    for (int d = 0; d < 6; ++d) {
      EXPECT_EQ(e.f32()[d], ref.f32()[7 * 6 + d]);
      EXPECT_EQ(e.f32()[6 + d], ref.f32()[d]);
    }
  }
  EXPECT_THROW(ops::embedding(C, table, {10}), Error);
  EXPECT_THROW(ops::embedding(C, table, {-1}), Error);
  const Tensor mr = ops::mean_rows(C, table);
  double s = 0;
  for (int r = 0; r < 10; ++r) s += table.f32()[r * 6 + 2];
  EXPECT_NEAR(mr.f32()[2], s / 10, 1e-6);
}

TEST(OpsData, GroupStatisticsWholeAndByRegion) {
  const Tensor x = randn({8, 9, 10}, 9, 2.0f);
  const int groups = 4;
  const Tensor st = ops::group_norm_stats(C, x, groups, 1e-6f);
  ASSERT_EQ(st.shape(), (Shape{groups, 2}));
  for (int g = 0; g < groups; ++g) {
    double m = 0, v = 0;
    const int64_t n = 2 * 9 * 10;
    for (int64_t i = 0; i < n; ++i) m += x.f32()[g * n + i];
    m /= double(n);
    for (int64_t i = 0; i < n; ++i) v += std::pow(x.f32()[g * n + i] - m, 2);
    v /= double(n);
    EXPECT_NEAR(st.f32()[2 * g], m, 1e-6);
    EXPECT_NEAR(st.f32()[2 * g + 1], 1.0 / std::sqrt(v + 1e-6), 1e-5);
  }
  // Moments over two regions that partition the image give the same statistics.
  Tensor acc = ops::zeros(C, {groups, 3}, DType::F64);
  ops::group_moments_add_(C, acc, x, groups, 0, 4, 0, 10);
  ops::group_moments_add_(C, acc, x, groups, 4, 9, 0, 10);
  const Tensor st2 = ops::group_norm_stats_from_moments(C, acc, 1e-6f);
  EXPECT_TRUE(test::close_to(st2, st, 1e-5, "stats from moments"));
  EXPECT_THROW(ops::group_moments_add_(C, acc, x, groups, 0, 10, 0, 10), Error);
}

// conv(P(x)) with a fused prologue equals P applied first, and the banded evaluation equals the
// whole-image one (a backend with tiny bands).
TEST(OpsData, ConvProloguesAndBandsMatchUnfusedOps) {
  const Tensor x = randn({8, 11, 9}, 10);
  const Tensor w = randn({6, 8, 3, 3}, 11, 0.2f).to_dtype(DType::BF16);
  const Tensor b = randn({6}, 12);
  const Tensor nw = randn({8}, 13), nb = randn({8}, 14);
  ops::BackendOptions bo;
  bo.conv_band_bytes = 8 * 9 * 4 * 2;  // two input rows a band
  const auto banded = ops::make_backend(Device::cpu(), bo);
  const ops::Context Cb{banded.get(), ops::Precision::F32};
  ops::Conv2dParams same;
  same.pad_top = same.pad_bottom = same.pad_left = same.pad_right = 1;
  const ops::ConvWeights cw = ops::prepare_conv(C, w, &b), cwb = ops::prepare_conv(Cb, w, &b);

  const Tensor stats = ops::group_norm_stats(C, x, 4, 1e-6f);
  Tensor normed = ops::group_norm(C, x, 4, nw, nb, 1e-6f);
  ops::silu_(C, normed);
  const Tensor want_norm = ops::conv2d(C, normed, cw, same);
  ops::ConvPrologue pro;
  pro.kind = ops::ConvPrologue::Kind::GroupNormSilu;
  pro.stats = &stats;
  pro.norm_w = &nw;
  pro.norm_b = &nb;
  EXPECT_TRUE(test::close_to(ops::conv2d(C, x, cw, same, pro), want_norm, 1e-6, "norm prologue"));
  EXPECT_TRUE(
      test::close_to(ops::conv2d(Cb, x, cwb, same, pro), want_norm, 1e-6, "banded norm prologue"));

  const Tensor want_up = ops::conv2d(C, ops::upsample_nearest2x(C, x), cw, same);
  ops::ConvPrologue up;
  up.kind = ops::ConvPrologue::Kind::Upsample2x;
  EXPECT_TRUE(test::close_to(ops::conv2d(C, x, cw, same, up), want_up, 1e-6, "upsample"));
  EXPECT_TRUE(test::close_to(ops::conv2d(Cb, x, cwb, same, up), want_up, 1e-6, "banded upsample"));
  EXPECT_TRUE(test::close_to(ops::conv2d(Cb, x, cwb, same), ops::conv2d(C, x, cw, same), 1e-6,
                             "banded plain"));
  // A prologue needs a 'same' stride-1 convolution.
  ops::Conv2dParams strided;
  strided.stride = 2;
  EXPECT_THROW(ops::conv2d(C, x, cw, strided, up), Error);
}

TEST(OpsData, RopeTablesFromPositions) {
  ops::RopeFreqs f;
  f.omega = {1.0, 0.25, 1e-3};
  f.axis = {0, 1, 1};
  const Tensor pos = Tensor::from_vector({0, 0, 3, 7, 100, 2}, {3, 2});
  for (bool f64 : {false, true}) {
    f.f64_angles = f64;
    const ops::RopeTable t = ops::rope_table(C, pos, f);
    ASSERT_EQ(t.cos.shape(), (Shape{3, 3}));
    for (int l = 0; l < 3; ++l)
      for (int p = 0; p < 3; ++p) {
        const double a = double(pos.f32()[l * 2 + f.axis[size_t(p)]]) * f.omega[size_t(p)];
        EXPECT_NEAR(t.cos.f32()[l * 3 + p], std::cos(a), 1e-6);
        EXPECT_NEAR(t.sin.f32()[l * 3 + p], std::sin(a), 1e-6);
      }
  }
  ops::RopeFreqs g;
  g.omega = {1.0, 0.01};
  g.axis = {0, 0};
  g.round_bf16 = true;
  const ops::RopeTable t = ops::rope_table(C, 5, 4, g);
  for (int l = 0; l < 4; ++l) {
    EXPECT_EQ(t.cos.f32()[l * 2], round_bf16(std::cos(float(5 + l))));
    EXPECT_EQ(t.sin.f32()[l * 2 + 1], round_bf16(std::sin(float(5 + l) * 0.01f)));
  }
  EXPECT_THROW(ops::rope_table(C, pos, ops::RopeFreqs{{1.0}, {2}, false, false}), Error);
}

TEST(OpsData, TimestepEmbedding) {
  const float t = 827.0f;
  const Tensor e = ops::timestep_embedding(C, t, 8, 10000.0f);
  ASSERT_EQ(e.shape(), (Shape{1, 8}));
  for (int i = 0; i < 4; ++i) {
    const double f = std::exp(-std::log(10000.0) * i / 4);
    EXPECT_NEAR(e.f32()[i], std::cos(t * f), 2e-4);
    EXPECT_NEAR(e.f32()[4 + i], std::sin(t * f), 2e-4);
  }
}

// In BF16 precision every intermediate of the guided step is rounded to bf16, one op at a time.
TEST(OpsData, GuidedEulerStepRoundsLikeTheBf16Reference) {
  const ops::Context B = test::cpu_ctx(ops::Precision::BF16);
  const Tensor vc = randn({64}, 15), vu = randn({64}, 16), vn = randn({64}, 17);
  Tensor img = randn({64}, 18), img_b = img.clone();
  ops::round_bf16_(B, img_b);
  Tensor g = Tensor::empty({64}), gb = Tensor::empty({64});
  const float dt = -0.0625f;
  ops::guided_euler_step_(C, img, {vc, vu, vn}, ops::Guidance::Edit, 6.0f, 1.5f, dt, &g);
  const Tensor start = img_b.clone();
  ops::guided_euler_step_(B, img_b, {vc, vu, vn}, ops::Guidance::Edit, 6.0f, 1.5f, dt, &gb);
  auto r = [](float v) { return round_bf16(v); };
  for (int64_t j = 0; j < 64; ++j) {
    const float c = r(vc.f32()[j]), nb = r(vu.f32()[j]), nt = r(vn.f32()[j]);
    const float want = r(r(nb + r(1.5f * r(nt - nb))) + r(6.0f * r(c - nt)));
    EXPECT_EQ(gb.f32()[j], want) << j;
    EXPECT_EQ(img_b.f32()[j], r(start.f32()[j] + r(dt * want))) << j;
    EXPECT_NEAR(
        g.f32()[j],
        vu.f32()[j] + 1.5f * (vn.f32()[j] - vu.f32()[j]) + 6.0f * (vc.f32()[j] - vn.f32()[j]),
        1e-5);
  }
  EXPECT_THROW(ops::guided_euler_step_(C, img, {vc}, ops::Guidance::T2I, 5, 0, dt), Error);
}

TEST(OpsData, ImageToU8) {
  // x [C=2, H=2, W=2] -> HWC: u[(y*W + x)*C + c] = trunc(127.5 * (clamp(x[c,y,x]) + 1)).
  Tensor x = Tensor::from_vector({-2.0f, -1.0f, 0.0f, 0.99f, 1.0f, 5.0f, NAN, -0.004f}, {2, 2, 2});
  Tensor u = ops::image_to_u8(C, x);
  ASSERT_EQ(u.shape(), (Shape{2, 2, 2}));
  ASSERT_EQ(u.dtype(), DType::U8);
  const uint8_t expect[8] = {0, 255, 0, 255, 127, 0, 253, 126};  // 126.99 truncates to 126
  for (int i = 0; i < 8; ++i) EXPECT_EQ(int(u.data<uint8_t>()[i]), int(expect[i])) << i;
}

}  // namespace
