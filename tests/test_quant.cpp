// Block-quantized weights: the reference quantisers (Q8_0, Q4_K byte layouts), the ops front end
// (linear, matmul, embedding) and the per-tensor type plan. The integer kernels of every ISA
// level are tested against a double-precision reference in test_cpu_kernels (once per level).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.hpp"
#include "core/quant_blocks.hpp"
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/cpu/kernels/quant.hpp"
#include "ops/ops.hpp"
#include "pipeline/quantize.hpp"
#include "support/backend.hpp"

using namespace ovis;

namespace {

std::vector<float> randn(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(g);
  return v;
}

Tensor tensor_of(const std::vector<float>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}

}  // namespace

TEST(QuantBlocks, Q8_0RoundTripIsWithinHalfAStep) {
  const auto x = randn(32 * 40, 1, 3.0f);
  std::vector<BlockQ8_0> q(40);
  quantize_row_q8_0(x.data(), q.data(), int64_t(x.size()));
  std::vector<float> y(x.size());
  dequantize_row_q8_0(q.data(), y.data(), int64_t(x.size()));
  for (int b = 0; b < 40; ++b) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    for (int i = 0; i < 32; ++i)
      EXPECT_LE(std::fabs(y[b * 32 + i] - x[b * 32 + i]), amax / 127.0f * 0.51f + 1e-3f * amax);
  }
}

// The codes are ggml's: round(x / d), halves away from zero, with d = max|x| / 127 (here 1, so
// x·(1/d) is x itself and the ties are exact), and for random blocks std::lround of x·(1/d).
TEST(QuantBlocks, Q8_0CodesRoundHalfAwayFromZero) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * (float(i) + 0.5f);
  x[31] = -127.0f;
  x[30] = 0.49999997f;  // just below a half: rounds to 0
  BlockQ8_0 q;
  quantize_row_q8_0(x.data(), &q, 32);
  EXPECT_EQ(f16_to_f32(q.d), 1.0f);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(q.qs[i], (i % 2 ? -1 : 1) * (i + 1)) << "x = " << x[i];
  EXPECT_EQ(q.qs[30], 0);
  EXPECT_EQ(q.qs[31], -127);
  const auto r = randn(32 * 64, 2, 5.0f);
  std::vector<BlockQ8_0> b(64);
  quantize_row_q8_0(r.data(), b.data(), int64_t(r.size()));
  for (int k = 0; k < 64; ++k) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(r[k * 32 + i]));
    for (int i = 0; i < 32; ++i)
      ASSERT_EQ(b[k].qs[i], std::lround(r[k * 32 + i] * (1.0f / (amax / 127.0f))))
          << "block " << k << " i " << i;
  }
}

TEST(QuantBlocks, Q4_KScalesPackAndUnpack) {
  // Every 6-bit scale/min value in every sub-block position survives the 12-byte packing.
  for (int v = 0; v < 64; ++v) {
    std::vector<float> x(256);
    // Sub-block j spans [-m, s·15 - m]; make the fitted scales hit many codes.
    for (int j = 0; j < 8; ++j)
      for (int i = 0; i < 32; ++i) x[j * 32 + i] = float((i % 16) * (v + j + 1)) - float(v * j);
    BlockQ4_K b;
    quantize_row_q4_k(x.data(), &b, 256);
    std::vector<float> y(256);
    dequantize_row_q4_k(&b, y.data(), 256);
    double err = 0, ref = 0;
    for (int i = 0; i < 256; ++i) {
      err += double(y[i] - x[i]) * (y[i] - x[i]);
      ref += double(x[i]) * x[i];
    }
    EXPECT_LT(std::sqrt(err / std::max(ref, 1e-9)), 0.05) << v;
  }
}

TEST(QuantBlocks, Q4_KErrorOfGaussianRows) {
  const auto x = randn(256 * 64, 2);
  Tensor q = tensor_of(x, {64, 256}).to_dtype(DType::Q4_K);
  EXPECT_EQ(q.nbytes(), size_t(64 * 144));
  const auto y = q.to_vector();
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += double(y[i] - x[i]) * (y[i] - x[i]);
    ref += double(x[i]) * x[i];
  }
  // 4-bit with per-32 scale and min: about 8-9% RMS error on Gaussian data.
  EXPECT_LT(std::sqrt(err / ref), 0.11);
  Tensor q8 = tensor_of(x, {64, 256}).to_dtype(DType::Q8_0);
  const auto y8 = q8.to_vector();
  err = 0;
  for (size_t i = 0; i < x.size(); ++i) err += double(y8[i] - x[i]) * (y8[i] - x[i]);
  EXPECT_LT(std::sqrt(err / ref), 0.01);
}

namespace {

// Q4_K quantisation written plainly, one candidate scale at a time: the reference for the
// vectorized quantiser, which must write the same bytes.
int code4_reference(float v) {
  const float r = std::trunc(v + std::copysign(0.5f, v));
  if (!(r > 0.0f)) return 0;  // also NaN (an infinite inverse scale times 0)
  return r > 15.0f ? 15 : int(r);
}

void fit_reference(const float* x, float* s_out, float* m_out) {
  float lo = *std::min_element(x, x + 32), hi = *std::max_element(x, x + 32);
  lo = std::min(lo, 0.0f);
  *s_out = 0;
  *m_out = -lo;
  if (hi <= lo) return;
  float best_err = INFINITY;
  *s_out = (hi - lo) / 15.0f;
  for (int step = -10; step <= 10; ++step) {
    const float iscale = (15.0f + 0.1f * float(step)) / (hi - lo);
    double sl = 0, sll = 0, sx = 0, slx = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = code4_reference(iscale * (x[i] - lo));
      sl += q;
      sll += double(q) * q;
      sx += x[i];
      slx += double(q) * x[i];
    }
    const double det = 32 * sll - sl * sl;
    if (det <= 0) continue;
    double s = (32 * slx - sl * sx) / det, b = (sx - s * sl) / 32;
    if (b > 0) {
      b = 0;
      s = sll > 0 ? slx / sll : 0;
    }
    if (s < 0) continue;
    double err = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = code4_reference(float((x[i] - b) * (s > 0 ? 1.0 / s : 0.0)));
      err += (s * q + b - x[i]) * (s * q + b - x[i]);
    }
    if (err < best_err) {
      best_err = float(err);
      *s_out = float(s);
      *m_out = float(-b);
    }
  }
}

BlockQ4_K quantize_reference(const float* v) {
  float s[8], m[8];
  for (int j = 0; j < 8; ++j) fit_reference(v + 32 * j, &s[j], &m[j]);
  const float d = f16_to_f32(f32_to_f16(*std::max_element(s, s + 8) / 63.0f));
  const float dmin = f16_to_f32(f32_to_f16(*std::max_element(m, m + 8) / 63.0f));
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = d > 0 ? std::clamp(int(std::lround(s[j] / d)), 0, 63) : 0;
    mn[j] = dmin > 0 ? std::clamp(int(std::lround(m[j] / dmin)), 0, 63) : 0;
  }
  BlockQ4_K o{};
  o.d = f32_to_f16(d);
  o.dmin = f32_to_f16(dmin);
  for (int j = 0; j < 4; ++j) {
    o.scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
    o.scales[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
    o.scales[j + 8] = uint8_t((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
  }
  for (int i = 0; i < 256; ++i) {
    const int j = i / 32;
    const float ds = d * float(sc[j]), dm = dmin * float(mn[j]);
    const int q = code4_reference(ds > 0 ? (v[i] + dm) / ds : 0.0f);
    const int byte = (j / 2) * 32 + i % 32;
    o.qs[byte] = uint8_t(j % 2 ? (o.qs[byte] | (q << 4)) : q);
  }
  return o;
}

}  // namespace

// Each candidate scale of a sub-block is a vector lane in the quantiser; the bytes must be those
// of the plain loop over candidates, on every kind of row (wide and narrow, one-signed, constant,
// zero-heavy, outliers, exact ties on a grid, subnormal and huge values).
TEST(QuantBlocks, Q4_KBytesEqualThePlainFit) {
  std::mt19937 g(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::normal_distribution<float> n(0.0f, 1.0f);
  const int kRows = 40;
  for (int kind = 0; kind < 9; ++kind) {
    std::vector<float> x(256 * kRows);
    for (size_t i = 0; i < x.size(); ++i) {
      const float z = n(g), a = u(g);
      switch (kind) {
        case 0:
          x[i] = 0.02f * z;
          break;
        case 1:
          x[i] = a - 0.5f;
          break;
        case 2:
          x[i] = a;
          break;
        case 3:
          x[i] = -3.0f * a;
          break;
        case 4:
          x[i] = i % 97 == 0 ? 50.0f * z : 0.01f * z;
          break;
        case 5:
          x[i] = i % 3 ? 1e-3f * z : 0.0f;
          break;
        case 6:
          x[i] = std::round(4.0f * z) / 4.0f;
          break;
        case 7:
          x[i] = (i / 32) % 5 == 0 ? 1.25f : 1e4f * z;
          break;
        default:
          x[i] = (i / 256) % 2 ? 1e-40f * z : 1e30f * z;
          break;
      }
    }
    std::vector<BlockQ4_K> got(kRows);
    quantize_row_q4_k(x.data(), got.data(), int64_t(x.size()));
    for (int r = 0; r < kRows; ++r) {
      const BlockQ4_K want = quantize_reference(x.data() + 256 * r);
      ASSERT_EQ(std::memcmp(&got[r], &want, sizeof want), 0) << "kind " << kind << " row " << r;
    }
  }
}

TEST(QuantBlocks, TensorSizesAreBlockAware) {
  Tensor q = Tensor::empty({10, 512}, DType::Q4_K);
  EXPECT_EQ(q.nbytes(), size_t(10 * 2 * 144));
  EXPECT_EQ(q.slice_rows(3, 5).offset(), size_t(3 * 2 * 144));
  EXPECT_EQ(Tensor::empty({3, 64}, DType::Q8_0).nbytes(), size_t(3 * 2 * 34));
  EXPECT_THROW(Tensor::empty({3, 48}, DType::Q8_0), Error);
  EXPECT_THROW(dtype_size(DType::Q8_0), Error);
}

// The quantised product stays close to the exact f32 one (activation rounding included).
TEST(QuantOps, LinearIsCloseToTheFloatProduct) {
  const ops::Context c = test::cpu_ctx();
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    for (int64_t M : {1, 40}) {
      const int64_t N = 48, K = 512;
      const auto x = randn(M * K, 3), wv = randn(N * K, 4, 0.05f);
      const Tensor w = tensor_of(wv, {N, K});
      const ops::LinearWeights lw = ops::prepare_linear(c, w.to_dtype(t), nullptr);
      const ops::LinearWeights lf = ops::prepare_linear(c, w, nullptr);
      const auto y = ops::linear(c, tensor_of(x, {M, K}), lw).to_vector();
      const auto yf = ops::linear(c, tensor_of(x, {M, K}), lf).to_vector();
      double err = 0, ref = 0;
      for (size_t i = 0; i < y.size(); ++i) {
        err += double(y[i] - yf[i]) * (y[i] - yf[i]);
        ref += double(yf[i]) * yf[i];
      }
      EXPECT_LT(std::sqrt(err / ref), t == DType::Q8_0 ? 0.02 : 0.12) << dtype_name(t) << M;
    }
  }
}

// Decode groups q/k/v (and gate/up) into one op; quantized weights must take their own kernels
// there too (one parallel section over every weight's panels), with the results of separate
// linear() calls: mixed types, a bias, row counts that are not whole panel pairs, M up to 4.
TEST(QuantOps, LinearGroupEqualsSeparateCalls) {
  const ops::Context c = test::cpu_ctx();
  const int64_t K = 256;
  const Tensor bias = tensor_of(randn(48, 14), {48});
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    const DType other = t == DType::Q8_0 ? DType::Q4_K : DType::Q8_0;
    const ops::LinearWeights a =
        ops::prepare_linear(c, tensor_of(randn(64 * K, 12, 0.05f), {64, K}).to_dtype(t), nullptr);
    const ops::LinearWeights b =
        ops::prepare_linear(c, tensor_of(randn(32 * K, 13, 0.05f), {32, K}).to_dtype(t), nullptr);
    const ops::LinearWeights d =
        ops::prepare_linear(c, tensor_of(randn(48 * K, 15, 0.05f), {48, K}).to_dtype(other), &bias);
    for (int64_t M : {1, 3}) {
      const Tensor xt = tensor_of(randn(M * K, 11), {M, K});
      const std::vector<Tensor> g = ops::linear_group(c, xt, {&a, &b, &d});
      ASSERT_EQ(g.size(), 3u);
      EXPECT_EQ(g[0].to_vector(), ops::linear(c, xt, a).to_vector()) << dtype_name(t) << M;
      EXPECT_EQ(g[1].to_vector(), ops::linear(c, xt, b).to_vector()) << dtype_name(t) << M;
      EXPECT_EQ(g[2].to_vector(), ops::linear(c, xt, d).to_vector()) << dtype_name(t) << M;
    }
  }
}

// On levels with panels (VNNI: Q8_0 and Q4_K; AVX2: Q4_K) a quantized Linear weight is
// rearranged into 16-row panels: at bind time when it is the model's own memory and its sole
// user, on first use when it views a mapped file or is shared (the tied LM head, whose embedding
// rows are still read from the stored form). Every form gives the products of the stored rows;
// after the kernel level is lowered (to the scalar level, which has no panels), a weight that
// kept its stored form falls back to it and one that released it is an error.
TEST(QuantOps, PanelsGiveTheProductsOfTheStoredRows) {
  namespace kernels = ovis::ops::cpu::kernels;
  const ops::Context c = test::cpu_ctx();
  const int64_t N = 70, K = 512, M = 9;
  const auto x = randn(M * K, 21);
  const Tensor xt = tensor_of(x, {M, K});
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    SCOPED_TRACE(dtype_name(t));
    const bool panels = kernels::quant_packed_bytes(t, N, K) > 0;
    const Tensor w = tensor_of(randn(N * K, 22, 0.05f), {N, K}).to_dtype(t);
    std::vector<float> want(size_t(M * N));
    kernels::quant_linear(t, w.raw(), N, K, x.data(), M, nullptr, want.data());
    auto mapped_copy = [&] {
      auto bytes = std::make_shared<std::vector<char>>(
          static_cast<const char*>(w.raw()), static_cast<const char*>(w.raw()) + w.nbytes());
      return Tensor::host_view(bytes->data(), w.shape(), w.dtype(), bytes);
    };
    const Tensor own = w.to_dtype(t);  // a writable copy
    const ops::LinearWeights sole = ops::prepare_linear(c, own, nullptr, /*sole_user=*/true);
    const ops::LinearWeights mapped = ops::prepare_linear(c, mapped_copy(), nullptr, true);
    const ops::LinearWeights shared = ops::prepare_linear(c, w, nullptr, /*sole_user=*/false);
    for (const ops::LinearWeights* lw : {&sole, &mapped, &shared}) {
      EXPECT_EQ(lw->prepared != nullptr, panels);
      const auto y = ops::linear(c, xt, *lw).to_vector();
      ASSERT_EQ(y.size(), want.size());
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], want[i], 1e-5 * std::max(1.0f, std::fabs(want[i])));
    }
    // The shared table's stored rows are intact.
    const auto row = ops::embedding(c, shared.w, {5}).to_vector();
    const auto deq = w.to_vector();
    for (int64_t d = 0; d < K; ++d) ASSERT_EQ(row[size_t(d)], deq[size_t(5 * K + d)]);
    if (!panels) continue;
    const kernels::Isa before = kernels::set_active_isa(kernels::Isa::Generic);
    try {
      ops::linear(c, xt, sole);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("repacked"), std::string::npos) << e.what();
    }
    const auto y = ops::linear(c, xt, mapped).to_vector();
    kernels::set_active_isa(before);
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], want[i], 1e-5 * std::max(1.0f, std::fabs(want[i])));
  }
}

TEST(QuantOps, EmbeddingAndMatmulDequantize) {
  const ops::Context c = test::cpu_ctx();
  const int64_t V = 20, D = 256;
  const auto tv = randn(V * D, 5);
  for (DType t : {DType::Q8_0, DType::Q4_K}) {
    const Tensor q = tensor_of(tv, {V, D}).to_dtype(t);
    const auto deq = q.to_vector();
    const auto e = ops::embedding(c, q, {3, 0, 19}).to_vector();
    // The decode step's form: ids in a tensor (read on the device).
    Tensor ids = Tensor::empty({3}, DType::I32);
    const int32_t id_values[3] = {3, 0, 19};
    std::copy(id_values, id_values + 3, ids.mutable_data<int32_t>());
    const auto e_dev = ops::embedding(c, q, ids).to_vector();
    for (int i = 0; i < 3; ++i) {
      const int64_t row = std::vector<int64_t>{3, 0, 19}[size_t(i)];
      for (int64_t d = 0; d < D; ++d) {
        ASSERT_EQ(e[size_t(i * D + d)], deq[size_t(row * D + d)]);
        ASSERT_EQ(e_dev[size_t(i * D + d)], deq[size_t(row * D + d)]);
      }
    }
    // matmul: a [M, V] · table [V, D].
    const int64_t M = 5;
    const auto a = randn(M * V, 6);
    const auto y = ops::matmul(c, tensor_of(a, {M, V}), q).to_vector();
    for (int64_t m = 0; m < M; ++m)
      for (int64_t d = 0; d < D; ++d) {
        double s = 0;
        for (int64_t k = 0; k < V; ++k) s += double(a[m * V + k]) * deq[size_t(k * D + d)];
        ASSERT_NEAR(y[size_t(m * D + d)], s, 1e-4 * std::max(1.0, std::fabs(s)));
      }
  }
}

TEST(QuantizePlan, RolesAndFallbacks) {
  auto plan = [](const std::string& n, const Shape& s, DType req,
                 const std::vector<TensorTypeRule>& rules = {}) {
    std::string note;
    return plan_tensor_type(n, s, DType::BF16, req, rules, &note);
  };
  const std::string L = "llm.model.layers.0.mlp.down_proj.weight";
  EXPECT_EQ(plan(L, {2048, 6144}, DType::Q4_K), DType::Q4_K);
  EXPECT_EQ(plan(L, {2048, 6144}, DType::Q8_0), DType::Q8_0);
  EXPECT_EQ(plan(L, {2048, 6144}, DType::F16), DType::F16);
  EXPECT_EQ(plan(L, {48, 128}, DType::Q4_K), DType::Q8_0);  // 128 is not a Q4_K row
  EXPECT_EQ(plan(L, {128, 48}, DType::Q4_K), DType::BF16);  // 48 is not a Q8_0 row either
  EXPECT_EQ(plan("llm.model.embed_tokens.weight", {151936, 2048}, DType::Q4_K), DType::Q8_0);
  EXPECT_EQ(plan("vte.weight", {65536, 2048}, DType::Q4_K), DType::Q8_0);
  EXPECT_EQ(plan("visual_generator.backbone.double_blocks.0.img_mod.lin.weight", {13824, 1536},
                 DType::Q4_K),
            DType::Q8_0);
  EXPECT_EQ(
      plan("visual_generator.backbone.single_blocks.3.linear1.weight", {10752, 1536}, DType::Q4_K),
      DType::Q4_K);
  EXPECT_EQ(plan("llm.model.norm.weight", {2048}, DType::Q8_0), DType::BF16);
  EXPECT_EQ(plan("llm.model.norm.weight", {2048}, DType::F32), DType::F32);
  EXPECT_EQ(plan("visual_generator.vae.decoder.mid_block.attentions.0.to_q.weight", {512, 512},
                 DType::Q8_0),
            DType::BF16);
  EXPECT_EQ(plan("visual_generator.backbone.img_in.weight", {1536, 64}, DType::Q8_0), DType::BF16);
  EXPECT_EQ(tensor_role("visual_tokenizer.backbone.preprocessor.pos_embed", {1, 1024, 1024}),
            TensorRole::Keep);
  // Rules: first match wins; block types never reach vectors.
  const auto rules = parse_tensor_type_rules("mlp\\.down_proj=q8_0,llm\\.=f16,norm=q4_k");
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(plan(L, {2048, 6144}, DType::Q4_K, rules), DType::Q8_0);
  EXPECT_EQ(plan("llm.model.layers.0.mlp.up_proj.weight", {6144, 2048}, DType::Q4_K, rules),
            DType::F16);
  EXPECT_EQ(
      plan("visual_tokenizer.backbone.trunk.blocks.0.norm_1.weight", {1024}, DType::Q4_K, rules),
      DType::BF16);
  EXPECT_THROW(parse_tensor_type_rules("abc"), Error);
  EXPECT_THROW(parse_tensor_type_rules("x=q3_k"), Error);
  EXPECT_THROW(parse_tensor_type_rules("(=q8_0"), Error);
  DType t;
  EXPECT_TRUE(parse_weight_type("Q4_K", &t));
  EXPECT_EQ(t, DType::Q4_K);
  EXPECT_FALSE(parse_weight_type("q4", &t));
}
