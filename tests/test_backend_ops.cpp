// test-backend-ops (ggml's idea): every op of the CUDA backend against the CPU backend on the
// same inputs, at random and odd shapes, in both precisions. In BF16 precision the inputs are
// bf16 values (the GPU keeps bf16 activations), so both backends see the same numbers; the
// tolerances are by precision and op family (relative to max(1, max|ref|)):
//   F32:  copies/layout exact, elementwise 1e-6, norms 1e-5, GEMM/attention/conv 1e-5..5e-5
//   BF16: copies exact, elementwise 8e-3 (the GPU rounds each result to bf16, the CPU keeps
//         f32), norms 1e-2, GEMM/attention/conv 2e-2 (bf16 products, different accumulation
//         order, bf16 outputs)
// Without a GPU every test is skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>

#include "core/error.hpp"
#include "nn/rope.hpp"
#include "ops/backend.hpp"
#include "ops/graph.hpp"
#include "ops/ops.hpp"
#include "ops/torch_randn.hpp"
#include "support/backend.hpp"
#include "support/cuda.hpp"
#include "support/golden.hpp"

using namespace ovis;

namespace {

using ops::Precision;

struct Both {
  ops::Context gpu, cpu;
  bool bf16;
};

Both both(Precision p) {
  return {test::cuda_ctx(p), test::cpu_ctx(p), p == Precision::BF16};
}

const Precision kPrecisions[] = {Precision::F32, Precision::BF16};

const char* name_of(Precision p) {
  return p == Precision::F32 ? "f32" : "bf16";
}

// Host N(0, scale²) values; bf16-representable when `bf16`.
Tensor rnd(const Shape& s, uint32_t seed, bool bf16, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Tensor t = Tensor::empty(s);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = bf16 ? round_bf16(d(g)) : d(g);
  return t;
}

// The same host values as an activation of each backend.
Tensor gpu_act(const Both& b, const Tensor& host) {
  return ops::upload(b.gpu, host);
}
Tensor cpu_act(const Both& b, const Tensor& host) {
  return ops::upload(b.cpu, host);
}

double tol(const Both& b, double f32, double bf16) {
  return b.bf16 ? bf16 : f32;
}

void expect_close(const Tensor& gpu, const Tensor& cpu, double rel, const std::string& what) {
  ASSERT_TRUE(gpu.device() == test::cuda_backend()->device()) << what;
  const Tensor a = test::host_f32(gpu), e = test::host_f32(cpu);
  ASSERT_EQ(a.numel(), e.numel()) << what;
  EXPECT_TRUE(test::close_to(a, e, rel, what));
}

void expect_same(const Tensor& gpu, const Tensor& cpu, const std::string& what) {
  expect_close(gpu, cpu, 0.0, what);
}

class BackendOps : public ::testing::Test {
 protected:
  void SetUp() override { OVIS_REQUIRE_CUDA(); }
};

}  // namespace

TEST_F(BackendOps, TensorsMoveBetweenHostAndDevice) {
  const Tensor h = rnd({3, 5}, 1, false);
  const Tensor d = h.to(test::cuda_backend()->device());
  EXPECT_FALSE(d.is_host());
  expect_same(d.clone(), h, "clone/to");
  const Tensor z = Tensor::zeros({7}, DType::BF16, d.device());
  EXPECT_EQ(test::host_f32(z).f32()[6], 0.0f);
  EXPECT_THROW(d.f32(), Error);  // host accessor on a device tensor
}

TEST_F(BackendOps, PrepareStoredDoesNotCopyADeviceTensor) {
  const ops::Context g = test::cuda_ctx(Precision::BF16);
  const Tensor table = ops::prepare_stored(g, rnd({11, 8}, 2, true).to_dtype(DType::BF16));
  EXPECT_EQ(ops::prepare_stored(g, table).device_ptr(), table.device_ptr());
  // The tied LM head reuses the embedding table.
  EXPECT_EQ(ops::prepare_linear(g, table, nullptr).w.device_ptr(), table.device_ptr());
}

TEST_F(BackendOps, Linear) {
  struct Case {
    int64_t m, k, n;
  };
  const Case cases[] = {{1, 64, 33},  {2, 100, 7}, {3, 256, 300}, {4, 72, 5},
                        {5, 64, 128}, {17, 7, 1},  {130, 96, 80}, {64, 2048, 96}};
  uint32_t seed = 10;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (DType wt : {DType::F32, DType::BF16, DType::F16})
      for (bool bias : {false, true})
        for (const Case& c : cases) {
          const Tensor x = rnd({c.m, c.k}, ++seed, b.bf16);
          const Tensor w = rnd({c.n, c.k}, ++seed, true, 0.2f).to_dtype(wt);
          const Tensor bb = rnd({c.n}, ++seed, true).to_dtype(DType::BF16);
          const ops::LinearWeights lg = ops::prepare_linear(b.gpu, w, bias ? &bb : nullptr);
          const ops::LinearWeights lc = ops::prepare_linear(b.cpu, w, bias ? &bb : nullptr);
          expect_close(ops::linear(b.gpu, gpu_act(b, x), lg), ops::linear(b.cpu, cpu_act(b, x), lc),
                       tol(b, 2e-5, 2e-2),
                       str("linear ", name_of(p), " w ", dtype_name(wt), bias ? " +b " : " ", c.m,
                           "x", c.k, "x", c.n));
        }
  }
}

// Weights larger than one conversion block (64 MiB of widened or dequantized rows): the GEMM
// runs per block of output columns, each with its slice of the bias. F32 precision on 16-bit
// weights widens the blocks, quantized weights (M > 4) dequantize them.
TEST_F(BackendOps, LinearAcrossWeightBlocks) {
  const int64_t m = 6, k = 4096, n = 8300;
  uint32_t seed = 650;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    const Tensor x = rnd({m, k}, ++seed, b.bf16);
    const Tensor bb = rnd({n}, ++seed, true).to_dtype(DType::BF16);
    const Tensor w32 = rnd({n, k}, ++seed, true, 0.05f);
    for (DType wt : {DType::BF16, DType::F16, DType::Q8_0, DType::Q4_K}) {
      const Tensor w = w32.to_dtype(wt);
      const Tensor wc = dtype_is_quantized(wt) ? w.to_dtype(DType::F32) : w;
      const ops::LinearWeights lg = ops::prepare_linear(b.gpu, w, &bb);
      const ops::LinearWeights lc = ops::prepare_linear(b.cpu, wc, &bb);
      expect_close(ops::linear(b.gpu, gpu_act(b, x), lg), ops::linear(b.cpu, cpu_act(b, x), lc),
                   tol(b, 2e-5, 2e-2),
                   str("linear across blocks ", name_of(p), " w ", dtype_name(wt)));
    }
  }
}

// Q8_0 / Q4_K weights: the GPU decodes the blocks in its kernels (decode GEMV up to 4 rows,
// dequantized blocks + cuBLASLt above); the CPU reference multiplies the same dequantized values
// as an f32 weight, so only the activations' treatment differs (the CPU's integer kernels would
// also round the activations to int8). Odd N, biases, both precisions, grouped and alone.
TEST_F(BackendOps, QuantizedLinear) {
  struct Case {
    int64_t m, k, n;
  };
  const Case cases[] = {{1, 256, 33},  {2, 512, 7},  {3, 256, 300},  {4, 768, 5},
                        {5, 256, 128}, {17, 512, 1}, {130, 256, 80}, {64, 2048, 96}};
  uint32_t seed = 700;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (DType wt : {DType::Q8_0, DType::Q4_K})
      for (bool bias : {false, true})
        for (const Case& c : cases) {
          const Tensor x = rnd({c.m, c.k}, ++seed, b.bf16);
          const Tensor w = rnd({c.n, c.k}, ++seed, false, 0.2f).to_dtype(wt);
          const Tensor wf = w.to_dtype(DType::F32);  // the same dequantized values
          const Tensor bb = rnd({c.n}, ++seed, true).to_dtype(DType::BF16);
          const ops::LinearWeights lg = ops::prepare_linear(b.gpu, w, bias ? &bb : nullptr);
          const ops::LinearWeights lc = ops::prepare_linear(b.cpu, wf, bias ? &bb : nullptr);
          EXPECT_EQ(lg.w.dtype(), wt);  // uploaded as blocks
          const Tensor xg = gpu_act(b, x);
          const Tensor yg = ops::linear(b.gpu, xg, lg);
          const std::string what = str("quantized linear ", name_of(p), " w ", dtype_name(wt),
                                       bias ? " +b " : " ", c.m, "x", c.k, "x", c.n);
          expect_close(yg, ops::linear(b.cpu, cpu_act(b, x), lc), tol(b, 2e-5, 2e-2), what);
          const std::vector<Tensor> g = ops::linear_group(b.gpu, xg, {&lg, &lg});
          expect_same(g[1], yg, what + " grouped");
        }
  }
}

// A quantized table (the tied embedding, the visual embedding table): embedding rows by host and
// by device ids, and the right-hand matmul operand, as the dequantized values.
TEST_F(BackendOps, QuantizedEmbeddingAndMatmul) {
  uint32_t seed = 800;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (DType wt : {DType::Q8_0, DType::Q4_K}) {
      const Tensor table = rnd({37, 512}, ++seed, false).to_dtype(wt);
      const Tensor tf = table.to_dtype(DType::F32);
      const Tensor tg = ops::prepare_stored(b.gpu, table);
      const std::vector<int64_t> ids{5, 0, 36, 5};
      const std::string what = str(name_of(p), " ", dtype_name(wt));
      expect_close(ops::embedding(b.gpu, tg, ids), ops::embedding(b.cpu, tf, ids),
                   tol(b, 1e-6, 8e-3), "embedding " + what);
      Tensor id_host = Tensor::empty({4}, DType::I32);
      for (int i = 0; i < 4; ++i) id_host.mutable_data<int32_t>()[i] = int32_t(ids[size_t(i)]);
      expect_close(ops::embedding(b.gpu, tg, id_host.to(tg.device())),
                   ops::embedding(b.cpu, tf, ids), tol(b, 1e-6, 8e-3),
                   "embedding (device ids) " + what);
      for (int64_t m : {1, 9, 70}) {
        const Tensor a = rnd({m, 37}, ++seed, b.bf16);
        expect_close(ops::matmul(b.gpu, gpu_act(b, a), tg), ops::matmul(b.cpu, cpu_act(b, a), tf),
                     tol(b, 2e-5, 2e-2), str("matmul ", what, " m=", m));
      }
    }
  }
}

// Decode's q/k/v and gate/up projections as one op: each output equals the CPU backend's, and
// the GPU's own separate linear() exactly.
TEST_F(BackendOps, LinearGroup) {
  uint32_t seed = 60;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (int64_t m : {1, 3, 17})
      for (bool bias : {false, true}) {
        const int64_t k = 136;
        const Tensor x = rnd({m, k}, ++seed, b.bf16);
        std::vector<Tensor> ws, bs;
        for (int64_t n : {64, 33, 33}) {
          ws.push_back(rnd({n, k}, ++seed, true, 0.2f).to_dtype(DType::BF16));
          bs.push_back(rnd({n}, ++seed, true).to_dtype(DType::BF16));
        }
        std::vector<ops::LinearWeights> lg, lc;
        for (size_t j = 0; j < ws.size(); ++j) {
          lg.push_back(ops::prepare_linear(b.gpu, ws[j], bias ? &bs[j] : nullptr));
          lc.push_back(ops::prepare_linear(b.cpu, ws[j], bias ? &bs[j] : nullptr));
        }
        const Tensor xg = gpu_act(b, x);
        const std::vector<Tensor> g = ops::linear_group(b.gpu, xg, {&lg[0], &lg[1], &lg[2]});
        const std::vector<Tensor> c =
            ops::linear_group(b.cpu, cpu_act(b, x), {&lc[0], &lc[1], &lc[2]});
        ASSERT_EQ(g.size(), 3u);
        ASSERT_EQ(c.size(), 3u);
        for (size_t j = 0; j < 3; ++j) {
          const std::string what =
              str("linear_group ", name_of(p), bias ? " +b " : " ", m, "x", k, " output ", j);
          expect_close(g[j], c[j], tol(b, 2e-5, 2e-2), what);
          expect_same(g[j], ops::linear(b.gpu, xg, lg[j]), what + " vs linear");
        }
      }
  }
}

TEST_F(BackendOps, Matmul) {
  uint32_t seed = 100;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (DType wt : {DType::F32, DType::BF16})
      for (auto [m, k, n] : {std::tuple{1, 5, 9}, {7, 300, 33}, {96, 64, 130}}) {
        const Tensor a = rnd({m, k}, ++seed, b.bf16);
        const Tensor w = rnd({k, n}, ++seed, true, 0.3f).to_dtype(wt);
        expect_close(ops::matmul(b.gpu, gpu_act(b, a), ops::prepare_stored(b.gpu, w)),
                     ops::matmul(b.cpu, cpu_act(b, a), ops::prepare_stored(b.cpu, w)),
                     tol(b, 2e-5, 2e-2), str("matmul ", name_of(p), " ", m, "x", k, "x", n));
      }
  }
}

TEST_F(BackendOps, Norms) {
  uint32_t seed = 200;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (auto [rows, d] : {std::pair{1, 1}, {7, 33}, {64, 128}, {3, 1536}, {2, 65532}}) {
      const Tensor x = rnd({rows, d}, ++seed, b.bf16, 2.0f);
      const Tensor w = rnd({d}, ++seed, true), bias = rnd({d}, ++seed, true);
      const Tensor wg = ops::prepare_f32(b.gpu, w), bg = ops::prepare_f32(b.gpu, bias);
      const Tensor xg = gpu_act(b, x), xc = cpu_act(b, x);
      const std::string s = str(name_of(p), " ", rows, "x", d);
      expect_close(ops::rms_norm(b.gpu, xg, &wg, 1e-6f), ops::rms_norm(b.cpu, xc, &w, 1e-6f),
                   tol(b, 1e-5, 1e-2), "rms_norm " + s);
      expect_close(ops::rms_norm(b.gpu, xg, nullptr, 1e-5f),
                   ops::rms_norm(b.cpu, xc, nullptr, 1e-5f), tol(b, 1e-5, 1e-2), "rms_norm " + s);
      expect_close(ops::layer_norm(b.gpu, xg, &wg, &bg, 1e-5f),
                   ops::layer_norm(b.cpu, xc, &w, &bias, 1e-5f), tol(b, 1e-5, 1e-2),
                   "layer_norm " + s);
      expect_close(ops::layer_norm(b.gpu, xg, nullptr, nullptr, 1e-6f),
                   ops::layer_norm(b.cpu, xc, nullptr, nullptr, 1e-6f), tol(b, 1e-5, 1e-2),
                   "layer_norm plain " + s);
    }
  }
}

TEST_F(BackendOps, GroupNormAndStatistics) {
  uint32_t seed = 300;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    // The last two have >= 8192 elements per group: the statistics split each group over
    // several blocks.
    for (auto [C, H, W, G] : {std::tuple{4, 3, 5, 2},
                              {32, 17, 9, 8},
                              {64, 40, 40, 32},
                              {64, 64, 64, 32},
                              {32, 128, 128, 8}}) {
      const Tensor x = rnd({C, H, W}, ++seed, b.bf16, 3.0f);
      const Tensor w = rnd({C}, ++seed, true), bias = rnd({C}, ++seed, true);
      const Tensor xg = gpu_act(b, x), xc = cpu_act(b, x);
      const std::string s = str(name_of(p), " ", C, "x", H, "x", W, " g", G);
      expect_close(ops::group_norm_stats(b.gpu, xg, G, 1e-6f),
                   ops::group_norm_stats(b.cpu, xc, G, 1e-6f), 1e-6, "group_norm_stats " + s);
      expect_close(ops::group_norm(b.gpu, xg, G, ops::prepare_f32(b.gpu, w),
                                   ops::prepare_f32(b.gpu, bias), 1e-6f),
                   ops::group_norm(b.cpu, xc, G, w, bias, 1e-6f), tol(b, 1e-5, 1e-2),
                   "group_norm " + s);
      Tensor ag = ops::zeros(b.gpu, {G, 3}, DType::F64), ac = ops::zeros(b.cpu, {G, 3}, DType::F64);
      for (auto [y0, y1, x0, x1] : {std::tuple{0, H, 0, W / 2}, {1, H, W / 2, W}}) {
        ops::group_moments_add_(b.gpu, ag, xg, G, y0, y1, x0, x1);
        ops::group_moments_add_(b.cpu, ac, xc, G, y0, y1, x0, x1);
      }
      expect_close(ops::group_norm_stats_from_moments(b.gpu, ag, 1e-6f),
                   ops::group_norm_stats_from_moments(b.cpu, ac, 1e-6f), 1e-6,
                   "group moments " + s);
    }
  }
}

TEST_F(BackendOps, Elementwise) {
  uint32_t seed = 400;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (int64_t n : {1, 7, 1000, 70001}) {
      const Tensor x = rnd({n}, ++seed, b.bf16, 3.0f), y = rnd({n}, ++seed, b.bf16);
      const std::string s = str(name_of(p), " n=", n);
      using Unary = std::function<void(const ops::Context&, Tensor&)>;
      const std::pair<const char*, Unary> unary[] = {
          {"silu_", [](const ops::Context& c, Tensor& t) { ops::silu_(c, t); }},
          {"gelu_tanh_", [](const ops::Context& c, Tensor& t) { ops::gelu_tanh_(c, t); }},
          {"affine_", [](const ops::Context& c, Tensor& t) { ops::affine_(c, t, 0.7f, -1.5f); }},
          {"scale_", [](const ops::Context& c, Tensor& t) { ops::scale_(c, t, 1.0f / 0.13025f); }},
          {"clamp_", [](const ops::Context& c, Tensor& t) { ops::clamp_(c, t, -1.0f, 0.5f); }},
      };
      for (const auto& [name, f] : unary) {
        Tensor g = gpu_act(b, x), c = cpu_act(b, x);
        f(b.gpu, g);
        f(b.cpu, c);
        expect_close(g, c, tol(b, 1e-6, 8e-3), std::string(name) + " " + s);
      }
      expect_close(ops::swiglu(b.gpu, gpu_act(b, x), gpu_act(b, y)),
                   ops::swiglu(b.cpu, cpu_act(b, x), cpu_act(b, y)), tol(b, 1e-6, 8e-3),
                   "swiglu " + s);
      Tensor g = gpu_act(b, x), c = cpu_act(b, x);
      ops::add_(b.gpu, g, gpu_act(b, y));
      ops::add_(b.cpu, c, cpu_act(b, y));
      expect_close(g, c, tol(b, 1e-6, 8e-3), "add_ " + s);
    }
    // round_bf16_ on f32 tensors: exact.
    const Tensor x = rnd({999}, ++seed, false);
    Tensor g = x.to(test::cuda_backend()->device()), c = x.clone();
    ops::round_bf16_(b.gpu, g);
    ops::round_bf16_(b.cpu, c);
    expect_same(g, c, "round_bf16_");
  }
}

TEST_F(BackendOps, ModulateGatedAddSoftmax) {
  uint32_t seed = 500;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (auto [M, D] : {std::pair{1, 8}, {5, 33}, {300, 1536}}) {
      const Tensor x = rnd({M, D}, ++seed, b.bf16), y = rnd({M, D}, ++seed, b.bf16);
      // Modulation chunks are views of one row, as the DiT takes them.
      const Tensor mod = rnd({1, 3 * D}, ++seed, b.bf16);
      const Tensor mg = gpu_act(b, mod), mc = cpu_act(b, mod);
      auto chunk = [D](const Tensor& row, int64_t i) {
        return row.reshape({row.numel()}).slice_rows(i * D, (i + 1) * D);
      };
      const std::string s = str(name_of(p), " ", M, "x", D);
      expect_close(ops::modulate(b.gpu, gpu_act(b, x), chunk(mg, 0), chunk(mg, 1)),
                   ops::modulate(b.cpu, cpu_act(b, x), chunk(mc, 0), chunk(mc, 1)),
                   tol(b, 1e-6, 8e-3), "modulate " + s);
      for (bool gated : {false, true}) {
        Tensor yg = gpu_act(b, y), yc = cpu_act(b, y);
        const Tensor gg = chunk(mg, 2), gc = chunk(mc, 2);
        ops::gated_add_(b.gpu, yg, gpu_act(b, x), gated ? &gg : nullptr);
        ops::gated_add_(b.cpu, yc, cpu_act(b, x), gated ? &gc : nullptr);
        expect_close(yg, yc, tol(b, 1e-6, 8e-3), str("gated_add_ ", gated, " ", s));
      }
      Tensor sg = gpu_act(b, rnd({M, D}, ++seed, b.bf16, 8.0f)), sc;
      sc = cpu_act(b, test::host_f32(sg));
      ops::softmax_(b.gpu, sg);
      ops::softmax_(b.cpu, sc);
      expect_close(sg, sc, tol(b, 1e-6, 8e-3), "softmax_ " + s);
    }
  }
}

TEST_F(BackendOps, CastsAndCopies) {
  const ops::Context g = test::cuda_ctx(), c = test::cpu_ctx();
  const Tensor x = rnd({257}, 600, false, 100.0f);
  for (DType from : {DType::F32, DType::BF16, DType::F16})
    for (DType to : {DType::F32, DType::BF16, DType::F16}) {
      const Tensor src = x.to_dtype(from);
      expect_same(ops::cast(g, ops::upload(g, src, true), to), ops::cast(c, src, to),
                  str("cast ", dtype_name(from), " -> ", dtype_name(to)));
    }
  // copy_ into a view (cache rows).
  Tensor dg = ops::zeros(g, {6, 4}, DType::BF16), dc = ops::zeros(c, {6, 4}, DType::BF16);
  const Tensor src = rnd({2, 4}, 601, false);
  Tensor vg = dg.slice_rows(3, 5), vc = dc.slice_rows(3, 5);
  ops::copy_(g, vg, ops::upload(g, src));
  ops::copy_(c, vc, src);
  expect_same(dg, dc, "copy_ into rows");
}

TEST_F(BackendOps, Layout) {
  uint32_t seed = 700;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    const std::string s = name_of(p);
    const Tensor x = rnd({7, 13}, ++seed, b.bf16), y = rnd({7, 5}, ++seed, b.bf16);
    const Tensor xg = gpu_act(b, x), xc = cpu_act(b, x);
    expect_same(ops::slice_cols(b.gpu, xg, 3, 11), ops::slice_cols(b.cpu, xc, 3, 11),
                "slice_cols " + s);
    expect_same(ops::concat_cols(b.gpu, {xg, gpu_act(b, y)}),
                ops::concat_cols(b.cpu, {xc, cpu_act(b, y)}), "concat_cols " + s);
    expect_same(ops::concat_rows(b.gpu, {xg, xg.slice_rows(2, 4)}),
                ops::concat_rows(b.cpu, {xc, xc.slice_rows(2, 4)}), "concat_rows " + s);
    expect_close(ops::mean_rows(b.gpu, xg), ops::mean_rows(b.cpu, xc), tol(b, 1e-6, 8e-3),
                 "mean_rows " + s);
    const Tensor table = rnd({50, 6}, ++seed, true).to_dtype(DType::BF16);
    const Tensor tg = ops::prepare_stored(b.gpu, table);
    expect_same(ops::embedding(b.gpu, tg, {49, 0, 7, 7}),
                ops::embedding(b.cpu, table, {49, 0, 7, 7}), "embedding " + s);
    Tensor ids = Tensor::empty({3}, DType::I32);
    ids.mutable_data<int32_t>()[0] = 4;
    ids.mutable_data<int32_t>()[1] = 60;  // outside: zeros
    ids.mutable_data<int32_t>()[2] = 0;
    expect_same(ops::embedding(b.gpu, tg, ops::upload(b.gpu, ids)),
                ops::embedding(b.cpu, table, ids), "embedding (device ids) " + s);
    // pack_latents' permute, and others.
    const Tensor z = rnd({4, 6, 2, 8, 2}, ++seed, b.bf16);
    for (const std::vector<int>& perm :
         {std::vector<int>{1, 3, 0, 2, 4}, {2, 0, 3, 1, 4}, {4, 3, 2, 1, 0}})
      expect_same(ops::permute(b.gpu, gpu_act(b, z), perm),
                  ops::permute(b.cpu, cpu_act(b, z), perm), "permute " + s);
    const Tensor img = rnd({3, 10, 12}, ++seed, b.bf16);
    const Tensor ig = gpu_act(b, img), ic = cpu_act(b, img);
    expect_same(ops::crop(b.gpu, ig, 2, 9, 1, 12), ops::crop(b.cpu, ic, 2, 9, 1, 12), "crop " + s);
    expect_same(ops::upsample_nearest2x(b.gpu, ig), ops::upsample_nearest2x(b.cpu, ic),
                "upsample " + s);
    expect_same(ops::grid_positions(b.gpu, 5, 7, 1.0f), ops::grid_positions(b.cpu, 5, 7, 1.0f),
                "grid_positions " + s);
    Tensor og = ops::zeros(b.gpu, {3, 10, 12}, b.gpu.act_dtype());
    Tensor oc = ops::zeros(b.cpu, {3, 10, 12}, b.cpu.act_dtype());
    const Tensor tile = rnd({3, 4, 5}, ++seed, b.bf16);
    const std::vector<float> wy{0.25f, 0.5f, 1.0f, 1.0f}, wx{1, 1, 0.5f, 0.25f, 0.125f};
    ops::accumulate_tile_(b.gpu, og, gpu_act(b, tile), 3, 6, wy, wx);
    ops::accumulate_tile_(b.cpu, oc, cpu_act(b, tile), 3, 6, wy, wx);
    expect_close(og, oc, tol(b, 1e-6, 8e-3), "accumulate_tile_ " + s);
  }
}

TEST_F(BackendOps, ArgmaxWithTiesAndNaN) {
  const ops::Context g = test::cuda_ctx(), c = test::cpu_ctx();
  std::mt19937 r(800);
  for (int64_t n : {1, 31, 1000, 151936}) {
    Tensor x = Tensor::empty({3, n});
    for (int64_t i = 0; i < x.numel(); ++i) x.mutable_f32()[i] = float(int(r() % 5));
    x.mutable_f32()[r() % n] = NAN;
    for (int64_t i = 0; i < n; ++i) x.mutable_f32()[2 * n + i] = NAN;
    expect_same(ops::argmax(g, ops::upload(g, x)), ops::argmax(c, x), str("argmax n=", n));
  }
}

TEST_F(BackendOps, RopeTablesAndRotation) {
  uint32_t seed = 900;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    const std::string s = name_of(p);
    // FLUX 3-axis (f64 angles) from position ids on the device, and the 1-D HF tables.
    const ops::RopeFreqs nd = nn::rope_freqs_nd({16, 56, 56}, 10000.0);
    Tensor pos = Tensor::empty({30, 3});
    for (int64_t i = 0; i < 90; ++i) pos.mutable_f32()[i] = float((i * 7) % 23);
    const ops::RopeTable tg = ops::rope_table(b.gpu, ops::upload(b.gpu, pos, true), nd);
    const ops::RopeTable tc = ops::rope_table(b.cpu, pos, nd);
    expect_close(tg.cos, tc.cos, 1e-6, "rope_table nd cos " + s);
    expect_close(tg.sin, tc.sin, 1e-6, "rope_table nd sin " + s);
    const ops::RopeFreqs one = nn::rope_freqs_1d(1e6, 128, b.bf16);
    const ops::RopeTable ag = ops::rope_table(b.gpu, 1000, 9, one);
    const ops::RopeTable ac = ops::rope_table(b.cpu, 1000, 9, one);
    expect_close(ag.cos, ac.cos, tol(b, 1e-6, 8e-3), "rope_table 1d " + s);
    const ops::RopeTable at =
        ops::rope_table_at(b.gpu, ops::upload(b.gpu, Tensor::full({1}, 1000.0f), true), 9, one);
    expect_same(at.sin, ag.sin, "rope_table_at " + s);
    // Rotation: interleaved (DiT) and half-split (LLM), the latter on 2 of 3 heads' dims only.
    for (auto layout : {ops::RopeLayout::Interleaved, ops::RopeLayout::HalfSplit}) {
      const Tensor x = rnd({30, 2 * 128}, ++seed, b.bf16);
      Tensor xg = gpu_act(b, x), xc = cpu_act(b, x);
      ops::rope_(b.gpu, xg, 2, tg, layout);
      ops::rope_(b.cpu, xc, 2, tc, layout);
      expect_close(xg, xc, tol(b, 1e-6, 8e-3), "rope_ " + s);
    }
  }
}

TEST_F(BackendOps, Attention) {
  struct Case {
    int64_t lq, lk;
    int hq, hk;
    int64_t d;
    bool causal;
  };
  const Case cases[] = {
      {1, 37, 4, 2, 64, true},
      {3, 200, 16, 8, 128, true},  // decode
      {5, 5, 2, 1, 16, true},
      {8, 100, 4, 4, 128, false},
      {77, 77, 3, 3, 32, true},
      {130, 300, 4, 2, 64, false},
      {64, 64, 2, 2, 128, true},
      {200, 650, 2, 2, 128, false},
      {100, 40, 2, 2, 64, true},   // causal, Lk < Lq: the first rows see no key
      {33, 200, 1, 1, 48, false},  // head dim outside the flash kernel
      {20, 20, 1, 1, 512, false},  // the VAE's one 512-channel head
      // Decode with the largest query block the split kernel keeps in shared memory
      // (8 queries x 8 heads per kv head x d 128 = 48 KiB).
      {8, 300, 64, 8, 128, true},
      // The cuBLAS path over several query tiles ([tile, Lk] scores are capped at 64 MiB).
      {4200, 4200, 1, 1, 48, false},
      {4200, 4200, 1, 1, 48, true},
  };
  uint32_t seed = 1000;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (const Case& c : cases) {
      const Tensor q = rnd({c.lq, c.hq * c.d}, ++seed, b.bf16);
      const Tensor k = rnd({c.lk, c.hk * c.d}, ++seed, b.bf16);
      const Tensor v = rnd({c.lk, c.hk * c.d}, ++seed, b.bf16);
      const float scale = 1.0f / std::sqrt(float(c.d));
      expect_close(ops::attention(b.gpu, gpu_act(b, q), gpu_act(b, k), gpu_act(b, v), c.hq, c.hk,
                                  scale, c.causal),
                   ops::attention(b.cpu, cpu_act(b, q), cpu_act(b, k), cpu_act(b, v), c.hq, c.hk,
                                  scale, c.causal),
                   tol(b, 2e-5, 2e-2),
                   str("attention ", name_of(p), " lq ", c.lq, " lk ", c.lk, " h ", c.hq, "/", c.hk,
                       " d ", c.d, c.causal ? " causal" : ""));
    }
  }
}

TEST_F(BackendOps, DecodeStepOpsAtADevicePosition) {
  uint32_t seed = 1100;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    const int hq = 16, hk = 8, D = 128;
    const int64_t cap = 300, at = 211;
    const Tensor cache_k = rnd({cap, hk * D}, ++seed, b.bf16),
                 cache_v = rnd({cap, hk * D}, ++seed, b.bf16);
    Tensor kg = gpu_act(b, cache_k), vg = gpu_act(b, cache_v);
    Tensor kc = cpu_act(b, cache_k), vc = cpu_act(b, cache_v);
    const Tensor pos = Tensor::full({1}, float(at));
    const Tensor pg = ops::upload(b.gpu, pos, true);
    const Tensor knew = rnd({1, hk * D}, ++seed, b.bf16);
    ops::copy_rows_at_(b.gpu, kg, gpu_act(b, knew), pg);
    ops::copy_rows_at_(b.cpu, kc, cpu_act(b, knew), pos);
    expect_same(kg, kc, str("copy_rows_at_ ", name_of(p)));
    const Tensor q = rnd({1, hq * D}, ++seed, b.bf16);
    expect_close(ops::attention_at(b.gpu, gpu_act(b, q), kg, vg, pg, hq, hk, 0.088f),
                 ops::attention_at(b.cpu, cpu_act(b, q), kc, vc, pos, hq, hk, 0.088f),
                 tol(b, 2e-5, 2e-2), str("attention_at ", name_of(p)));
  }
}

TEST_F(BackendOps, Conv2dWithProloguesAndBands) {
  struct Case {
    int64_t c, h, w, o, k;
  };
  const Case cases[] = {{3, 9, 7, 5, 3}, {8, 16, 16, 4, 1}, {16, 20, 12, 8, 3}};
  // A second backend whose convolutions run in bands of a few rows.
  ops::BackendOptions small;
  small.conv_band_bytes = 2048;
  const auto banded = ops::make_backend(test::cuda_backend()->device(), small);
  uint32_t seed = 1200;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    const ops::Context bg{banded.get(), p};
    for (const Case& c : cases) {
      const Tensor x = rnd({c.c, c.h, c.w}, ++seed, b.bf16);
      const Tensor w = rnd({c.o, c.c, c.k, c.k}, ++seed, true, 0.3f).to_dtype(DType::BF16);
      const Tensor bias = rnd({c.o}, ++seed, true).to_dtype(DType::BF16);
      const ops::ConvWeights wg = ops::prepare_conv(b.gpu, w, &bias);
      const ops::ConvWeights wb = ops::prepare_conv(bg, w, &bias);
      const ops::ConvWeights wc = ops::prepare_conv(b.cpu, w, &bias);
      ops::Conv2dParams same;
      same.pad_top = same.pad_bottom = same.pad_left = same.pad_right = int(c.k / 2);
      const int groups = c.c % 4 == 0 ? 4 : 1;
      const Tensor nw = rnd({c.c}, ++seed, true), nb = rnd({c.c}, ++seed, true);
      const Tensor xg = gpu_act(b, x), xc = cpu_act(b, x);
      const Tensor sg = ops::group_norm_stats(b.gpu, xg, groups, 1e-6f);
      const Tensor sc = ops::group_norm_stats(b.cpu, xc, groups, 1e-6f);
      const Tensor nwg = ops::prepare_f32(b.gpu, nw), nbg = ops::prepare_f32(b.gpu, nb);
      for (auto kind : {ops::ConvPrologue::Kind::None, ops::ConvPrologue::Kind::GroupNormSilu,
                        ops::ConvPrologue::Kind::Upsample2x}) {
        ops::ConvPrologue pg, pc;
        pg.kind = pc.kind = kind;
        if (kind == ops::ConvPrologue::Kind::GroupNormSilu) {
          pg.stats = &sg;
          pg.norm_w = &nwg;
          pg.norm_b = &nbg;
          pc.stats = &sc;
          pc.norm_w = &nw;
          pc.norm_b = &nb;
        }
        const Tensor ref = ops::conv2d(b.cpu, xc, wc, same, pc);
        const std::string s = str("conv2d ", name_of(p), " ", c.c, "x", c.h, "x", c.w, " -> ", c.o,
                                  " k", c.k, " prologue ", int(kind));
        expect_close(ops::conv2d(b.gpu, xg, wg, same, pg), ref, tol(b, 5e-5, 2e-2), s);
        expect_close(ops::conv2d(bg, ops::upload(bg, x), wb, same, pg), ref, tol(b, 5e-5, 2e-2),
                     s + " (banded)");
      }
      if (c.k == 3) {  // the encoder's downsample: stride 2, padding bottom/right only
        ops::Conv2dParams down;
        down.stride = 2;
        down.pad_bottom = down.pad_right = 1;
        expect_close(ops::conv2d(b.gpu, xg, wg, down), ops::conv2d(b.cpu, xc, wc, down),
                     tol(b, 5e-5, 2e-2), str("conv2d stride 2 ", name_of(p)));
      }
    }
  }
}

TEST_F(BackendOps, DiffusionOps) {
  uint32_t seed = 1300;
  for (Precision p : kPrecisions) {
    const Both b = both(p);
    for (float t : {0.0f, 1000.0f, 827.0f})
      expect_close(ops::timestep_embedding(b.gpu, t, 256, 10000.0f),
                   ops::timestep_embedding(b.cpu, t, 256, 10000.0f), tol(b, 2e-6, 8e-3),
                   str("timestep_embedding ", name_of(p), " t=", t));
    // Each reference op rounded on its own: bit-exact in both precisions.
    for (auto g : {ops::Guidance::T2I, ops::Guidance::Edit}) {
      const int nv = g == ops::Guidance::T2I ? 2 : 3;
      const Tensor img = rnd({64, 16}, ++seed, b.bf16);
      std::vector<Tensor> vg, vc;
      for (int i = 0; i < nv; ++i) {
        const Tensor v = rnd({64, 16}, ++seed, b.bf16);
        vg.push_back(gpu_act(b, v));
        vc.push_back(cpu_act(b, v));
      }
      Tensor ig = gpu_act(b, img), ic = cpu_act(b, img);
      Tensor gg = ops::empty(b.gpu, {64, 16}, ig.dtype()),
             gc = ops::empty(b.cpu, {64, 16}, ic.dtype());
      ops::guided_euler_step_(b.gpu, ig, vg, g, 6.0f, 1.5f, -0.0423f, &gg);
      ops::guided_euler_step_(b.cpu, ic, vc, g, 6.0f, 1.5f, -0.0423f, &gc);
      expect_same(ig, ic, str("guided_euler_step_ ", name_of(p), " ", int(g)));
      expect_same(gg, gc, str("guided_euler_step_ guidance ", name_of(p), " ", int(g)));
    }
  }
  const ops::Context g = test::cuda_ctx(), c = test::cpu_ctx();
  Tensor x = rnd({3, 17, 23}, 1399, false, 1.5f);
  x.mutable_f32()[5] = NAN;
  expect_same(ops::image_to_u8(g, ops::upload(g, x)), ops::image_to_u8(c, x), "image_to_u8");
}

TEST_F(BackendOps, TorchRandnOnTheGpuIsTheHostSchemeUpToSineApproximation) {
  const ops::Context g = test::cuda_ctx();
  for (const Shape& s : {Shape{4, 128, 128}, Shape{4, 16, 24}, Shape{3, 100003}}) {
    const Tensor t = test::host_f32(ops::randn_torch_cuda(g, s, 42));
    const Tensor h = ops::randn_torch_cuda(test::cpu_ctx(), s, 42);
    int64_t differ = 0;
    for (int64_t i = 0; i < t.numel(); ++i) {
      const int d = int(f32_to_bf16(t.f32()[i])) - int(f32_to_bf16(h.f32()[i]));
      ASSERT_LE(std::abs(d), 1) << i;
      differ += d != 0;
    }
    EXPECT_LE(double(differ), 1e-3 * double(t.numel())) << shape_str(s);
  }
}

// A recorded graph replays the eager result; inputs changed in place between replays are seen.
TEST_F(BackendOps, CapturedGraphReplaysWithNewInputs) {
  for (Precision p : kPrecisions) {
    const ops::Context g = test::cuda_ctx(p);
    const bool bf16 = p == Precision::BF16;
    const Tensor w = rnd({64, 32}, 1400, true, 0.2f).to_dtype(DType::BF16);
    const ops::LinearWeights lw = ops::prepare_linear(g, w, nullptr);
    Tensor x = ops::upload(g, rnd({1, 32}, 1401, bf16));
    Tensor out;
    auto graph = ops::capture(g, [&] {
      Tensor h = ops::linear(g, x, lw);
      ops::silu_(g, h);
      out = ops::argmax(g, h);
    });
    for (uint32_t s : {1402u, 1403u, 1404u}) {
      const Tensor xin = rnd({1, 32}, s, bf16);
      ops::copy_(g, x, ops::upload(g, xin));
      graph->replay();
      Tensor h = ops::linear(g, x, lw);
      ops::silu_(g, h);
      expect_same(out, ops::argmax(g, h), str("graph replay ", name_of(p), " seed ", s));
    }
  }
}
