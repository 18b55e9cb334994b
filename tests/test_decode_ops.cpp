// The ops behind the recorded decode step (device-held position and token ids, argmax, graphs)
// on the CPU backend, and TokenDecoder on the tiny fixture's LLM against the plain forward loop
// and the greedy goldens.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.hpp"
#include "io/config.hpp"
#include "io/safetensors.hpp"
#include "io/weight_binder.hpp"
#include "llm/qwen3.hpp"
#include "llm/token_decoder.hpp"
#include "llm/token_sampler.hpp"
#include "nn/rope.hpp"
#include "ops/graph.hpp"
#include "ops/ops.hpp"
#include "support/backend.hpp"
#include "support/golden.hpp"

using namespace ovis;

namespace {

const ops::Context C = test::cpu_ctx();

Tensor randn(const Shape& s, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_f32()[i] = d(g);
  return t;
}

Tensor position(float p) {
  return Tensor::full({1}, p);
}

void expect_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.numel(), b.numel()) << what;
  const Tensor fa = a.to_f32(), fb = b.to_f32();
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(fa.f32()[i], fb.f32()[i]) << what << " @" << i;
}

}  // namespace

TEST(DecodeOps, ArgmaxFollowsTheSamplerRule) {
  std::mt19937 g(3);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t n = 1 + int64_t(g() % 300);
    Tensor x = Tensor::empty({3, n});
    float* p = x.mutable_f32();
    for (int64_t i = 0; i < x.numel(); ++i) p[i] = float(int(g() % 7)) - 3.0f;  // many ties
    if (trial % 3 == 0) p[g() % x.numel()] = NAN;
    if (trial % 7 == 0)
      for (int64_t i = 0; i < n; ++i) p[i] = NAN;  // row 0 all NaN -> 0
    const Tensor ids = ops::argmax(C, x);
    ASSERT_EQ(ids.dtype(), DType::I32);
    ASSERT_EQ(ids.numel(), 3);
    for (int r = 0; r < 3; ++r)
      EXPECT_EQ(ids.data<int32_t>()[r], TokenSampler::argmax(p + r * n, n)) << "trial " << trial;
  }
}

TEST(DecodeOps, EmbeddingOfDeviceIdsMatchesHostIds) {
  const Tensor table = randn({10, 6}, 1).to_dtype(DType::BF16);
  Tensor ids = Tensor::empty({4}, DType::I32);
  const int32_t v[4] = {3, 0, 9, 12};  // 12 is outside: zeros
  std::copy(v, v + 4, ids.mutable_data<int32_t>());
  const Tensor got = ops::embedding(C, table, ids);
  const Tensor want = ops::embedding(C, table, std::vector<int64_t>{3, 0, 9});
  ASSERT_EQ(got.shape(), Shape({4, 6}));
  expect_equal(got.slice_rows(0, 3), want, "rows");
  for (int d = 0; d < 6; ++d) EXPECT_EQ(got.f32()[18 + d], 0.0f);
  EXPECT_THROW(ops::embedding(C, table, Tensor::zeros({2}, DType::I64)), Error);
}

TEST(DecodeOps, RopeTableAtIsTheTableAtThatPosition) {
  const ops::RopeFreqs f = nn::rope_freqs_1d(1e6, 16, true);
  const ops::RopeTable a = ops::rope_table_at(C, position(37.0f), 3, f);
  const ops::RopeTable b = ops::rope_table(C, 37, 3, f);
  expect_equal(a.cos, b.cos, "cos");
  expect_equal(a.sin, b.sin, "sin");
  EXPECT_THROW(ops::rope_table_at(C, position(2.5f), 1, f), Error);
  EXPECT_THROW(ops::rope_table_at(C, Tensor::zeros({2}), 1, f), Error);
}

TEST(DecodeOps, CopyRowsAtWritesThoseRows) {
  Tensor dst = Tensor::zeros({5, 4});
  const Tensor src = randn({2, 4}, 2);
  ops::copy_rows_at_(C, dst, src, position(2.0f));
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(dst.f32()[r * 4 + c], r == 2 || r == 3 ? src.f32()[(r - 2) * 4 + c] : 0.0f);
  EXPECT_THROW(ops::copy_rows_at_(C, dst, src, position(4.0f)), Error);  // rows 4, 5
}

TEST(DecodeOps, AttentionAtReadsThePrefixOfTheCache) {
  const int hq = 4, hk = 2, D = 8;
  const Tensor k = randn({10, hk * D}, 4), v = randn({10, hk * D}, 5);
  for (int64_t lq : {1, 3}) {
    const Tensor q = randn({lq, hq * D}, 6);
    const int64_t p = 5;
    const Tensor got = ops::attention_at(C, q, k, v, position(float(p)), hq, hk, 0.3f);
    const Tensor want =
        ops::attention(C, q, k.slice_rows(0, p + lq), v.slice_rows(0, p + lq), hq, hk, 0.3f, true);
    expect_equal(got, want, "attention_at lq=" + std::to_string(lq));
  }
}

TEST(DecodeOps, UploadWritesIntoTheExistingStorage) {
  Tensor dst = Tensor::zeros({3}, DType::I32);
  const void* before = dst.device_ptr();
  Tensor h = Tensor::empty({3}, DType::I32);
  for (int i = 0; i < 3; ++i) h.mutable_data<int32_t>()[i] = 7 * i;
  ops::upload_(C, dst, h);
  EXPECT_EQ(dst.device_ptr(), before);
  EXPECT_EQ(dst.data<int32_t>()[2], 14);
  EXPECT_THROW(ops::upload_(C, dst, Tensor::zeros({3})), Error);  // dtype differs
}

TEST(DecodeOps, CpuGraphRunsTheBodyAtEveryReplay) {
  Tensor counter = Tensor::zeros({1});
  Tensor out;
  auto g = ops::capture(C, [&] {
    ops::affine_(C, counter, 1.0f, 1.0f);
    out = counter.clone();
  });
  EXPECT_EQ(counter.f32()[0], 0.0f);  // nothing ran yet
  g->replay();
  g->replay();
  EXPECT_EQ(counter.f32()[0], 2.0f);
  EXPECT_EQ(out.f32()[0], 2.0f);
}

// ---- TokenDecoder on the fixture's Qwen3 ----
namespace {

struct Fixture {
  ModelConfig cfg = load_model_config(test::fixture_dir());
  TensorStore store = TensorStore::open_dir(test::fixture_dir());
  WeightBinder binder{store};
  Qwen3 llm;
  explicit Fixture(ops::Precision p) : llm(Qwen3::load(binder, test::cpu_ctx(p), cfg.llm)) {}
};

const Qwen3& fixture_llm() {
  static Fixture f(ops::Precision::F32);
  return f.llm;
}

}  // namespace

TEST(TokenDecoder, GreedyStepsReproduceTheGoldenTokens) {
  const Qwen3& llm = fixture_llm();
  for (const char* c : {"und_single", "und_text"}) {
    const auto& mc = test::manifest_case(c);
    const auto expected = mc["greedy_ids_generate"].get<std::vector<int64_t>>();
    const Tensor embeds = test::golden(std::string(c) + ".merged_embeds");
    KvCache cache = llm.make_cache(embeds.dim(0) + int64_t(expected.size()));
    const Tensor h = llm.forward(embeds, cache);
    const Tensor logits = llm.logits(h.slice_rows(h.dim(0) - 1, h.dim(0)));
    std::vector<int64_t> got{TokenSampler::argmax(logits.f32(), logits.numel())};
    TokenDecoder dec(llm, cache, /*greedy=*/true);
    while (got.size() < expected.size()) got.push_back(dec.next_greedy(got.back()));
    EXPECT_EQ(got, expected) << c;
    EXPECT_EQ(cache.size(), embeds.dim(0) + int64_t(expected.size()) - 1);
  }
}

TEST(TokenDecoder, LogitsEqualThePlainForwardLoop) {
  const Qwen3& llm = fixture_llm();
  const std::vector<int64_t> prompt{151644, 872, 198, 40451, 752};
  const std::vector<int64_t> feed{264, 2805, 3364};
  KvCache a = llm.make_cache(16), b = llm.make_cache(16);
  llm.forward(llm.embed(prompt), a);
  llm.forward(llm.embed(prompt), b);
  TokenDecoder dec(llm, b, /*greedy=*/false);
  for (int64_t t : feed) {
    const Tensor want = llm.logits(llm.forward(llm.embed({t}), a));
    const Tensor got = dec.next_logits(t);
    expect_equal(got, want, "step logits");
  }
  EXPECT_EQ(a.size(), b.size());
  EXPECT_THROW(dec.next_logits(-1), Error);
}

TEST(TokenDecoder, FullCacheIsAnError) {
  const Qwen3& llm = fixture_llm();
  KvCache cache = llm.make_cache(3);
  llm.forward(llm.embed({1, 2}), cache);
  TokenDecoder dec(llm, cache, true);
  dec.next_greedy(5);
  EXPECT_THROW(dec.next_greedy(6), Error);
}
