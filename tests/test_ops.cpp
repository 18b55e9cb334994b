// Every CPU op against a naive double-precision reference (the ggml test-backend-ops idea), in
// both precision modes.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/features.hpp"
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/ops.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"

using namespace ovis;

namespace {

Tensor randn(const Shape& s, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Tensor t = Tensor::empty(s);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(g);
  return t;
}

// [rows, cols] -> [cols, rows] on the host (references).
Tensor transposed(const Tensor& m) {
  const int64_t R = m.dim(0), Cn = m.dim(1);
  const Tensor f = m.to_f32();
  Tensor t = Tensor::empty({Cn, R});
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < Cn; ++j) t.mutable_f32()[j * R + i] = f.f32()[i * Cn + j];
  return t;
}

Tensor bf16_round(const Tensor& t) {
  return t.to_dtype(DType::BF16).to_f32();
}

// y = x wᵀ + b in double
Tensor ref_linear(const Tensor& x, const Tensor& w, const Tensor* b) {
  Tensor wf = w.to_f32();
  Tensor bf = b ? b->to_f32() : Tensor();
  const int64_t N = w.dim(0), K = w.dim(1), M = x.numel() / K;
  Tensor y = Tensor::empty({M, N});
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = b ? bf.f32()[n] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += double(x.f32()[m * K + k]) * wf.f32()[n * K + k];
      y.mutable_f32()[m * N + n] = float(s);
    }
  return y;
}

Tensor ref_attention(const Tensor& q, const Tensor& k, const Tensor& v, int hq, int hk, float scale,
                     bool causal) {
  const int64_t Lq = q.dim(0), Lk = k.dim(0), D = q.dim(1) / hq;
  Tensor o = Tensor::zeros({Lq, hq * D});
  for (int h = 0; h < hq; ++h) {
    const int kh = h / (hq / hk);
    for (int64_t i = 0; i < Lq; ++i) {
      std::vector<double> s(Lk, -INFINITY);
      double mx = -INFINITY;
      for (int64_t j = 0; j < Lk; ++j) {
        if (causal && j > i + (Lk - Lq)) continue;
        double d = 0;
        for (int64_t c = 0; c < D; ++c)
          d += double(q.f32()[i * hq * D + h * D + c]) * k.f32()[j * hk * D + kh * D + c];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      double z = 0;
      for (auto& x : s) z += (x = std::exp(x - mx));
      for (int64_t c = 0; c < D; ++c) {
        double a = 0;
        for (int64_t j = 0; j < Lk; ++j) a += s[j] * v.f32()[j * hk * D + kh * D + c];
        o.mutable_f32()[i * hq * D + h * D + c] = float(a / z);
      }
    }
  }
  return o;
}

// BF16 precision runs on every CPU: natively with AVX512_BF16, else with bf16-rounded inputs and
// f32 products (the same values).
class OpsTest : public ::testing::TestWithParam<ops::Precision> {
 protected:
  ops::Context C = test::cpu_ctx(GetParam());
  bool bf16() const { return GetParam() == ops::Precision::BF16; }
  Tensor linear(const Tensor& x, const Tensor& w, const Tensor* b) const {
    return ops::linear(C, x, ops::prepare_linear(C, w, b));
  }
  // f32: float32 rounding only. bf16: inputs rounded to bf16 (rel. error ~2^-8 per product).
  double gemm_tol() const { return bf16() ? 2e-2 : 1e-5; }
};

TEST_P(OpsTest, LinearMatchesReferenceForGemvAndGemmShapes) {
  for (int64_t M : {1, 3, 4, 5, 37}) {
    for (DType wt : {DType::BF16, DType::F32, DType::F16}) {
      Tensor x = randn({M, 70}, 1);
      Tensor w = randn({33, 70}, 2, 0.2f).to_dtype(wt);
      Tensor b = randn({33}, 3).to_dtype(wt);
      Tensor y = linear(x, w, &b);
      bool bf16_path = bf16() && wt == DType::BF16;
      Tensor ref = ref_linear(bf16_path ? bf16_round(x) : x, w, &b);
      EXPECT_TRUE(test::close_to(y, ref, bf16_path ? 1e-5 : 1e-5, "linear M=" + std::to_string(M)))
          << dtype_name(wt);
    }
  }
}

// The grouped op gives exactly what separate linear() calls give, at GEMV (one parallel
// section) and GEMM sizes, for every weight dtype and with or without biases.
TEST_P(OpsTest, LinearGroupEqualsSeparateLinears) {
  uint32_t seed = 70;
  for (int64_t M : {1, 2, 4, 9})
    for (DType wt : {DType::BF16, DType::F32, DType::F16}) {
      const Tensor x = randn({M, 300}, ++seed);
      std::vector<ops::LinearWeights> lw;
      for (int64_t n : {1029, 517, 33}) {
        const Tensor w = randn({n, 300}, ++seed, 0.2f).to_dtype(wt);
        const Tensor b = randn({n}, ++seed);
        lw.push_back(ops::prepare_linear(C, w, n == 517 ? nullptr : &b));
      }
      const std::vector<Tensor> got = ops::linear_group(C, x, {&lw[0], &lw[1], &lw[2]});
      ASSERT_EQ(got.size(), 3u);
      for (size_t j = 0; j < lw.size(); ++j)
        EXPECT_TRUE(test::close_to(got[j], ops::linear(C, x, lw[j]), 0.0,
                                   "linear_group M=" + std::to_string(M) + " output " +
                                       std::to_string(j) + " " + dtype_name(wt)));
    }
}

// Shapes past the kernels' blocks: GEMV rows split across threads (N·K above the parallel
// threshold, N not a multiple of the 4-row step or the 16-row split), and the F32-mode 16-bit
// weight GEMM's 256 x 1024 weight blocks (several N and K blocks, ragged edges).
TEST_P(OpsTest, LinearAndMatmulMatchReferenceAcrossKernelBlocks) {
  for (int64_t M : {1, 4, 37}) {
    for (DType wt : {DType::BF16, DType::F16}) {
      Tensor x = randn({M, 1100}, 31);
      Tensor w = randn({301, 1100}, 32, 0.05f).to_dtype(wt);
      Tensor b = randn({301}, 33);
      Tensor y = linear(x, w, &b);
      const bool bf16_path = bf16() && wt == DType::BF16;
      Tensor ref = ref_linear(bf16_path ? bf16_round(x) : x, w, &b);
      EXPECT_TRUE(
          test::close_to(y, ref, 1e-5, "linear M=" + std::to_string(M) + " " + dtype_name(wt)));
    }
  }
  Tensor a = randn({6, 1500}, 34);
  Tensor bm = randn({1500, 300}, 35, 0.05f).to_dtype(DType::BF16);
  const Tensor bt = transposed(bm);
  EXPECT_TRUE(test::close_to(ops::matmul(C, a, bm),
                             ref_linear(bf16() ? bf16_round(a) : a, bt, nullptr), 1e-5,
                             "matmul 6x1500x300"));
}

// A read-only view of w's values (as a mapped checkpoint shard is), kept alive by the view.
Tensor read_only_copy(const Tensor& w) {
  auto bytes = std::make_shared<std::vector<char>>(static_cast<const char*>(w.raw()),
                                                   static_cast<const char*>(w.raw()) + w.nbytes());
  return Tensor::host_view(bytes->data(), w.shape(), w.dtype(), bytes);
}

// A weight bound by nn::Linear (sole user) is repacked into the GEMM panels on the AVX512-BF16
// level in BF16 precision: at bind time when it is the model's own memory, on first use when it
// views a mapped file. The results are those of the stored weight (bit for bit in the GEMM, to
// the reference's tolerance in the GEMV), alone and grouped.
TEST_P(OpsTest, RepackedLinearMatchesTheStoredWeight) {
  namespace kernels = ovis::ops::cpu::kernels;
  const bool repacks = bf16() && kernels::active_isa() == kernels::Isa::Avx512Bf16;
  uint32_t seed = 90;
  for (bool mapped : {false, true})
    for (int64_t M : {1, 3, 4, 5, 37}) {
      const Tensor x = randn({M, 1100}, ++seed);
      std::vector<ops::LinearWeights> packed, stored;
      for (int64_t n : {130, 64, 7}) {
        Tensor w = randn({n, 1100}, ++seed, 0.05f).to_dtype(DType::BF16);
        if (mapped) w = read_only_copy(w);
        const Tensor b = randn({n}, ++seed);
        packed.push_back(ops::prepare_linear(C, w, n == 64 ? nullptr : &b, /*sole_user=*/true));
        stored.push_back(ops::prepare_linear(C, w, n == 64 ? nullptr : &b, /*sole_user=*/false));
        EXPECT_EQ(packed.back().prepared != nullptr, repacks);
        EXPECT_EQ(stored.back().prepared, nullptr);
        // Only the model's own memory is released at bind time.
        EXPECT_EQ(packed.back().w.device_ptr() == w.device_ptr(), mapped || !repacks);
        const Tensor ref = ref_linear(bf16() ? bf16_round(x) : x, w, n == 64 ? nullptr : &b);
        const std::string what = std::string(mapped ? "mapped" : "own") +
                                 " M=" + std::to_string(M) + " N=" + std::to_string(n);
        const Tensor yp = ops::linear(C, x, packed.back()), ys = ops::linear(C, x, stored.back());
        EXPECT_TRUE(test::close_to(yp, ref, 1e-5, "repacked " + what));
        if (M > 4) {
          EXPECT_TRUE(test::close_to(yp, ys, 0.0, "repacked = stored " + what));
        }
      }
      const std::vector<Tensor> got = ops::linear_group(C, x, {&packed[0], &packed[1], &packed[2]});
      for (size_t j = 0; j < packed.size(); ++j)
        EXPECT_TRUE(test::close_to(got[j], ops::linear(C, x, packed[j]), 0.0,
                                   "repacked group M=" + std::to_string(M)));
    }
}

// A repacked weight belongs to the kernel level that packed it. Lowering the level afterwards
// is a clear error when the stored form was released, and falls back to the stored form (still
// mapped) otherwise: never a product with the wrong layout.
TEST_P(OpsTest, RepackedLinearRefusesAnotherKernelLevel) {
  namespace kernels = ovis::ops::cpu::kernels;
  if (!bf16() || kernels::active_isa() != kernels::Isa::Avx512Bf16)
    GTEST_SKIP() << "weights are repacked on the avx512bf16 level in BF16 precision only";
  const Tensor w = randn({70, 64}, 99, 0.1f).to_dtype(DType::BF16);
  const Tensor x = randn({9, 64}, 98);
  const ops::LinearWeights own = ops::prepare_linear(C, w, nullptr, /*sole_user=*/true);
  const ops::LinearWeights mapped =
      ops::prepare_linear(C, read_only_copy(w), nullptr, /*sole_user=*/true);
  const Tensor before_switch = ops::linear(C, x, mapped);  // packs it
  const kernels::Isa before = kernels::set_active_isa(kernels::Isa::Avx512);
  try {
    ops::linear(C, x, own);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("repacked"), std::string::npos) << e.what();
  }
  const Tensor after_switch = ops::linear(C, x, mapped);
  kernels::set_active_isa(before);
  EXPECT_TRUE(test::close_to(after_switch, before_switch, 1e-5, "stored form after the switch"));
}

TEST_P(OpsTest, MatmulMatchesReference) {
  Tensor a = randn({9, 40}, 4);
  Tensor b = randn({40, 21}, 5).to_dtype(DType::BF16);
  Tensor y = ops::matmul(C, a, b);
  // reference: a · b = a · (bᵀ)ᵀ
  const Tensor bt = transposed(b);
  Tensor ref = ref_linear(bf16() ? bf16_round(a) : a, bt, nullptr);
  EXPECT_TRUE(test::close_to(y, ref, 1e-5, "matmul"));
}

TEST_P(OpsTest, AttentionMatchesReference) {
  for (bool causal : {false, true}) {
    for (int64_t Lq : {1, 7, 70}) {
      const int64_t Lk = causal ? Lq + 5 : 45;
      Tensor q = randn({Lq, 4 * 16}, 6), k = randn({Lk, 2 * 16}, 7), v = randn({Lk, 2 * 16}, 8);
      Tensor y = ops::attention(C, q, k, v, 4, 2, 0.25f, causal);
      Tensor ref = ref_attention(q, k, v, 4, 2, 0.25f, causal);
      EXPECT_TRUE(test::close_to(y, ref, bf16() ? 2e-2 : 1e-5, "attention"));
    }
  }
}

// Every attention kernel (few-query decode path, AMX tiles, strided sgemm) against the double
// reference: long and odd lengths, head dims that are not multiples of the 32-wide tiles, GQA,
// causal with a key offset (query i sees keys j <= i + Lk - Lq) and peaky logits. BF16 mode is
// compared with the reference on bf16-rounded q/k/v, so what remains is the bf16 rounding of P
// (and fp32 accumulation order); it runs with and without AMX.
TEST_P(OpsTest, AttentionKernelsMatchReferenceAtLongOddAndCausalShapes) {
  struct Case {
    int64_t lq, lk, d;
    int hq, hk;
    bool causal;
    float scale;  // 0: 1/sqrt(d)
  };
  const Case cases[] = {
      {1, 300, 128, 4, 2, true, 0},     // decode: one query sees every key
      {3, 41, 64, 6, 2, true, 0},       // speculative-style few queries, causal offset 38
      {8, 20, 32, 2, 1, true, 0},       // few queries whose last keys fall in different spans
      {1, 1500, 64, 2, 1, true, 0},     // decode over many key spans, merged
      {300, 300, 128, 2, 2, false, 0},  // long, not a multiple of any tile
      {77, 77, 128, 4, 1, true, 0},     // causal prefill, GQA group 4
      {45, 62, 64, 2, 1, true, 0},      // causal with offset 17
      {33, 129, 32, 3, 3, false, 0},    // short head dim, keys one past a block
      {50, 20, 72, 2, 2, false, 0},     // head dim padded to the tile depth, Lq > Lk
      {64, 64, 16, 2, 2, true, 0},      // tiny head dim, exact tiles
      {40, 90, 64, 2, 2, false, 1.0f},  // peaky logits (std 8): max subtraction matters
      {600, 600, 64, 1, 1, true, 0},    // long causal
      {40, 40, 512, 1, 1, false, 0},    // VAE mid-block attention: one head of 512
  };
  const bool amx_before = ops::cpu::set_amx_allowed(true);
  for (bool amx : {true, false}) {
    if (!amx && !bf16()) continue;
    ops::cpu::set_amx_allowed(amx);
    for (const Case& c : cases) {
      const float scale = c.scale > 0 ? c.scale : 1.0f / std::sqrt(float(c.d));
      Tensor q = randn({c.lq, c.hq * c.d}, 21), k = randn({c.lk, c.hk * c.d}, 22),
             v = randn({c.lk, c.hk * c.d}, 23);
      Tensor y = ops::attention(C, q, k, v, c.hq, c.hk, scale, c.causal);
      Tensor ref = bf16() ? ref_attention(bf16_round(q), bf16_round(k), bf16_round(v), c.hq, c.hk,
                                          scale, c.causal)
                          : ref_attention(q, k, v, c.hq, c.hk, scale, c.causal);
      const std::string what = "attention Lq=" + std::to_string(c.lq) +
                               " Lk=" + std::to_string(c.lk) + " D=" + std::to_string(c.d) +
                               (c.causal ? " causal" : "") + (amx ? "" : " no-AMX");
      const ::testing::AssertionResult r = test::close_to(y, ref, bf16() ? 1e-2 : 1e-5, what);
      std::printf("  %s\n", r.message());
      EXPECT_TRUE(r);
    }
    // Causal with Lq > Lk: the first Lq - Lk queries see no key (zeros); the others are the
    // square causal problem of the last Lk queries. Covers the tiled and the few-query kernels.
    for (auto [lq, lk] : {std::pair<int64_t, int64_t>{40, 10}, {6, 2}}) {
      Tensor q = randn({lq, 2 * 64}, 24), k = randn({lk, 2 * 64}, 25), v = randn({lk, 2 * 64}, 26);
      Tensor y = ops::attention(C, q, k, v, 2, 2, 0.125f, true);
      Tensor tail = ops::attention(C, q.slice_rows(lq - lk, lq).clone(), k, v, 2, 2, 0.125f, true);
      for (int64_t i = 0; i < (lq - lk) * 128; ++i) ASSERT_EQ(y.f32()[i], 0.0f) << "Lq=" << lq;
      EXPECT_TRUE(test::close_to(y.slice_rows(lq - lk, lq), tail, bf16() ? 1e-2 : 1e-5, "Lq > Lk"));
    }
  }
  ops::cpu::set_amx_allowed(amx_before);
}

TEST_P(OpsTest, Conv2dMatchesReference) {
  const int64_t Ch = 5, H = 9, W = 7, O = 6;
  Tensor x = randn({Ch, H, W}, 9);
  Tensor w = randn({O, Ch, 3, 3}, 10, 0.3f).to_dtype(DType::BF16);
  Tensor b = randn({O}, 11);
  for (ops::Conv2dParams p : {ops::Conv2dParams{1, 1, 1, 1, 1}, ops::Conv2dParams{2, 0, 0, 1, 1}}) {
    Tensor y = ops::conv2d(C, x, ops::prepare_conv(C, w, &b), p);
    const int64_t OH = (H + p.pad_top + p.pad_bottom - 3) / p.stride + 1;
    const int64_t OW = (W + p.pad_left + p.pad_right - 3) / p.stride + 1;
    ASSERT_EQ(y.shape(), (Shape{O, OH, OW}));
    Tensor xr = bf16() ? bf16_round(x) : x;
    Tensor wf = w.to_f32();
    Tensor ref = Tensor::empty({O, OH, OW});
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double s = b.f32()[o];
          for (int64_t c = 0; c < Ch; ++c)
            for (int di = 0; di < 3; ++di)
              for (int dj = 0; dj < 3; ++dj) {
                int64_t yy = i * p.stride + di - p.pad_top, xx = j * p.stride + dj - p.pad_left;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                s += double(xr.f32()[(c * H + yy) * W + xx]) *
                     wf.f32()[((o * Ch + c) * 3 + di) * 3 + dj];
              }
          ref.mutable_f32()[(o * OH + i) * OW + j] = float(s);
        }
    EXPECT_TRUE(test::close_to(y, ref, 1e-5, "conv2d stride " + std::to_string(p.stride)));
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, OpsTest,
                         ::testing::Values(ops::Precision::F32, ops::Precision::BF16),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

TEST(Ops, NormsMatchDefinitions) {
  const ops::Context C = test::cpu_ctx();
  Tensor x = randn({3, 10}, 12, 2.0f);
  Tensor w = randn({10}, 13);
  Tensor b = randn({10}, 14);
  Tensor r = ops::rms_norm(C, x, &w, 1e-6f);
  Tensor l = ops::layer_norm(C, x, &w, &b, 1e-6f);
  for (int m = 0; m < 3; ++m) {
    double ss = 0, mean = 0, var = 0;
    for (int d = 0; d < 10; ++d)
      ss += x.f32()[m * 10 + d] * x.f32()[m * 10 + d], mean += x.f32()[m * 10 + d];
    mean /= 10;
    for (int d = 0; d < 10; ++d) var += std::pow(x.f32()[m * 10 + d] - mean, 2);
    var /= 10;
    for (int d = 0; d < 10; ++d) {
      EXPECT_NEAR(r.f32()[m * 10 + d], x.f32()[m * 10 + d] / std::sqrt(ss / 10 + 1e-6) * w.f32()[d],
                  1e-5);
      EXPECT_NEAR(l.f32()[m * 10 + d],
                  (x.f32()[m * 10 + d] - mean) / std::sqrt(var + 1e-6) * w.f32()[d] + b.f32()[d],
                  1e-5);
    }
  }
  Tensor g = randn({4, 3, 5}, 15);
  Tensor gw = randn({4}, 16), gb = randn({4}, 17);
  Tensor gn = ops::group_norm(C, g, 2, gw, gb, 1e-6f);
  for (int grp = 0; grp < 2; ++grp) {
    double mean = 0, var = 0;
    for (int i = 0; i < 30; ++i) mean += g.f32()[grp * 30 + i];
    mean /= 30;
    for (int i = 0; i < 30; ++i) var += std::pow(g.f32()[grp * 30 + i] - mean, 2);
    var /= 30;
    for (int i = 0; i < 30; ++i) {
      int c = grp * 2 + i / 15;
      EXPECT_NEAR(
          gn.f32()[grp * 30 + i],
          (g.f32()[grp * 30 + i] - mean) / std::sqrt(var + 1e-6) * gw.f32()[c] + gb.f32()[c], 1e-5);
    }
  }
}

TEST(Ops, RopeLayouts) {
  const ops::Context C = test::cpu_ctx();
  Tensor x = randn({2, 2 * 8}, 18);
  Tensor cos = randn({2, 4}, 19), sin = randn({2, 4}, 20);
  Tensor a = x.clone(), b = x.clone();
  ops::rope_(C, a, 2, {cos, sin}, ops::RopeLayout::HalfSplit);
  ops::rope_(C, b, 2, {cos, sin}, ops::RopeLayout::Interleaved);
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h)
      for (int d = 0; d < 4; ++d) {
        const float* v = x.f32() + (l * 2 + h) * 8;
        float c = cos.f32()[l * 4 + d], s = sin.f32()[l * 4 + d];
        EXPECT_FLOAT_EQ(a.f32()[(l * 2 + h) * 8 + d], v[d] * c - v[d + 4] * s);
        EXPECT_FLOAT_EQ(a.f32()[(l * 2 + h) * 8 + d + 4], v[d + 4] * c + v[d] * s);
        EXPECT_FLOAT_EQ(b.f32()[(l * 2 + h) * 8 + 2 * d], c * v[2 * d] - s * v[2 * d + 1]);
        EXPECT_FLOAT_EQ(b.f32()[(l * 2 + h) * 8 + 2 * d + 1], s * v[2 * d] + c * v[2 * d + 1]);
      }
}

TEST(Ops, ElementwiseAndLayout) {
  const ops::Context C = test::cpu_ctx();
  Tensor x = Tensor::from_vector({-2, -0.5f, 0, 1.5f}, {2, 2});
  Tensor s = x.clone();
  ops::silu_(C, s);
  Tensor g = x.clone();
  ops::gelu_tanh_(C, g);
  for (int i = 0; i < 4; ++i) {
    float v = x.f32()[i];
    EXPECT_NEAR(s.f32()[i], v / (1 + std::exp(-v)), 1e-6);
    EXPECT_NEAR(g.f32()[i],
                0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))), 1e-6);
  }
  Tensor sm = x.clone();
  ops::softmax_(C, sm);
  EXPECT_NEAR(sm.f32()[0] + sm.f32()[1], 1.0, 1e-6);
  Tensor c = ops::concat_cols(C, {x, ops::slice_cols(C, x, 1, 2)});
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(c.f32()[2], x.f32()[1]);
  Tensor r = ops::concat_rows(C, {x, x});
  EXPECT_EQ(r.shape(), (Shape{4, 2}));
  Tensor up = ops::upsample_nearest2x(C, x.reshape({1, 2, 2}));
  EXPECT_EQ(up.f32()[0 * 4 + 1], x.f32()[0]);
  EXPECT_EQ(up.f32()[3 * 4 + 3], x.f32()[3]);
}

// The vectorised activations and softmax against their scalar definitions in double, on a
// length that takes the parallel split and a 16-lane tail, with values well into both tails.
TEST(Ops, VectorisedActivationsAndSoftmaxMatchDefinitions) {
  const ops::Context C = test::cpu_ctx();
  const int64_t n = 70001;
  Tensor x = randn({n}, 40, 4.0f);
  float* xp = x.mutable_f32();
  xp[0] = -120.0f, xp[1] = 120.0f, xp[2] = -9.0f, xp[3] = 0.0f;
  Tensor u = randn({n}, 41);
  Tensor s = x.clone(), g = x.clone();
  ops::silu_(C, s);
  ops::gelu_tanh_(C, g);
  Tensor sw = ops::swiglu(C, x, u);
  double es = 0, eg = 0, ew = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = x.f32()[i];
    const double silu = v / (1 + std::exp(-v));
    const double gelu = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    es = std::max(es, std::abs(s.f32()[i] - silu) / std::max(1.0, std::abs(silu)));
    eg = std::max(eg, std::abs(g.f32()[i] - gelu) / std::max(1.0, std::abs(gelu)));
    ew = std::max(
        ew, std::abs(sw.f32()[i] - silu * u.f32()[i]) / std::max(1.0, std::abs(silu * u.f32()[i])));
  }
  EXPECT_LT(es, 1e-6);
  EXPECT_LT(eg, 1e-6);
  EXPECT_LT(ew, 1e-6);

  Tensor logits = randn({3, 20007}, 42, 6.0f);
  Tensor sm = logits.clone();
  ops::softmax_(C, sm);
  for (int64_t m = 0; m < 3; ++m) {
    const float* r = logits.f32() + m * 20007;
    double mx = -INFINITY, z = 0, err = 0;
    for (int64_t d = 0; d < 20007; ++d) mx = std::max(mx, double(r[d]));
    for (int64_t d = 0; d < 20007; ++d) z += std::exp(r[d] - mx);
    for (int64_t d = 0; d < 20007; ++d) {
      const double p = std::exp(r[d] - mx) / z;
      err = std::max(err, std::abs(sm.f32()[m * 20007 + d] - p) / p);
    }
    // fp32 rounding of r − max (|r − max| up to ~60 here) alone gives ~60·2^-24 relative.
    EXPECT_LT(err, 1e-5) << "row " << m;
  }
}

}  // namespace

namespace {

// ctest runs one OpenMP thread per test process; this exercises the multi-thread paths (the
// thread count belongs to the backend: two backends, one thread each and two).
TEST(Ops, TwoThreadsAgreeWithOne) {
  std::vector<Tensor> results[2];
  for (int threads : {1, 2}) {
    ops::BackendOptions bo;
    bo.threads = threads;
    const auto backend = ops::make_backend(Device::cpu(), bo);
    ASSERT_EQ(backend->threads(), threads);
    for (ops::Precision p : {ops::Precision::F32, ops::Precision::BF16}) {
      const ops::Context C{backend.get(), p};
      const ops::LinearWeights w =
          ops::prepare_linear(C, randn({96, 160}, 21, 0.1f).to_dtype(DType::BF16), nullptr);
      results[threads - 1].push_back(ops::linear(C, randn({1, 160}, 22), w));
      results[threads - 1].push_back(ops::linear(C, randn({50, 160}, 23), w));
      Tensor q = randn({130, 4 * 32}, 24), k = randn({130, 2 * 32}, 25),
             v = randn({130, 2 * 32}, 26);
      results[threads - 1].push_back(ops::attention(C, q, k, v, 4, 2, 0.17f, true));
    }
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  for (size_t i = 0; i < results[0].size(); ++i)
    EXPECT_TRUE(test::close_to(results[1][i], results[0][i], 1e-5, "result " + std::to_string(i)));
}

}  // namespace
