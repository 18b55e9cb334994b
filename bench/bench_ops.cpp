// Op micro-benchmarks at the real Ovis-U1-3B shapes (Qwen3-1.7B decode/prefill, AIMv2 448²,
// Yak DiT 512² and 1024²). Not run by CTest; run e.g.
//   OMP_NUM_THREADS=2 build/bench_ops --benchmark_filter=Gemv
// Counters: GB/s = weight bytes streamed per second (GEMV), GFLOP/s = 2·M·N·K (GEMM) or
// 4·Lq·Lk·D·heads (attention, halved when causal) per second.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include "ops/backend.hpp"
#include "ops/ops.hpp"

using namespace ovis;

namespace {

// One CPU backend (threads from OMP_NUM_THREADS, else all cores); contexts at either precision.
ops::Context ctx(int64_t bf16) {
  static const auto backend = ops::make_backend(Device::cpu());
  return ops::Context{backend.get(), bf16 ? ops::Precision::BF16 : ops::Precision::F32};
}

Tensor random_tensor(const Shape& s, uint32_t seed, float scale, DType dt) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Tensor t = Tensor::empty(s);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(g);
  return dt == DType::F32 ? t : t.to_dtype(dt);
}

// Weights are large; build each shape once per process.
const Tensor& weight(int64_t n, int64_t k, DType dt) {
  static std::map<std::tuple<int64_t, int64_t, DType>, Tensor> cache;
  auto key = std::make_tuple(n, k, dt);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, random_tensor({n, k}, 7, 0.02f, dt)).first;
  return it->second;
}

// 0 bf16, 1 q8_0, 2 q4_k.
DType weight_type(int64_t code) {
  return code == 1 ? DType::Q8_0 : code == 2 ? DType::Q4_K : DType::BF16;
}

// Args: M, N, K, bf16 mode[, weight type].
void BM_Linear(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const ops::Context c = ctx(st.range(3));
  const DType wt = st.range(4) ? weight_type(st.range(4)) : DType::BF16;
  const ops::LinearWeights w = ops::prepare_linear(c, weight(N, K, wt), nullptr);
  Tensor x = random_tensor({M, K}, 3, 1.0f, DType::F32);
  for (auto _ : st) benchmark::DoNotOptimize(ops::linear(c, x, w).device_ptr());
  const double iters = double(st.iterations());
  st.counters["GB/s"] =
      benchmark::Counter(iters * double(w.w.nbytes()) / 1e9, benchmark::Counter::kIsRate);
  st.counters["GFLOP/s"] = benchmark::Counter(iters * 2.0 * double(M * N) * double(K) / 1e9,
                                              benchmark::Counter::kIsRate);
}

// The same GEMV cycling through enough weight copies (>= 640 MB) that every call
// streams its weight from DRAM, not from the 300 MB L3: the decode situation (3.4 GB of weights
// per token). Args: M, N, K, bf16 mode, weight type (0 bf16, 1 q8_0, 2 q4_k).
void BM_GemvCold(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const ops::Context c = ctx(st.range(3));
  const DType wt = weight_type(st.range(4));
  const int64_t copies =
      std::max<int64_t>(1, (int64_t(640) << 20) / int64_t(dtype_bytes(wt, N * K)));
  // Copies of one random weight (quantizing a fresh one per copy takes minutes for q4_k).
  const Tensor w0 = random_tensor({N, K}, 1, 0.02f, wt);
  std::vector<ops::LinearWeights> ws;
  for (int64_t i = 0; i < copies; ++i)
    ws.push_back(ops::prepare_linear(c, w0.clone(), nullptr, /*sole_user=*/true));
  Tensor x = random_tensor({M, K}, 3, 1.0f, DType::F32);
  for (const auto& w : ws) ops::linear(c, x, w);  // packed forms are made on first use
  size_t i = 0;
  for (auto _ : st) benchmark::DoNotOptimize(ops::linear(c, x, ws[i++ % ws.size()]).device_ptr());
  st.counters["GB/s"] = benchmark::Counter(
      double(st.iterations()) * double(dtype_bytes(wt, N * K)) / 1e9, benchmark::Counter::kIsRate);
}

void GemvArgs(benchmark::internal::Benchmark* b) {
  // Qwen3-1.7B: fused gate/up sized [6144, 2048], down [2048, 6144], tied LM head.
  for (int64_t bf16 : {1, 0})
    for (auto [n, k] : {std::pair<int64_t, int64_t>{6144, 2048}, {2048, 6144}, {151936, 2048}})
      b->Args({1, n, k, bf16, 0});
  b->Args({4, 6144, 2048, 1, 0});
  for (int64_t type : {1, 2})
    for (auto [n, k] : {std::pair<int64_t, int64_t>{6144, 2048}, {2048, 6144}})
      b->Args({1, n, k, 1, type});
}

void GemmArgs(benchmark::internal::Benchmark* b) {
  for (int64_t bf16 : {1, 0}) {
    b->Args({512, 6144, 2048, bf16, 0});  // Qwen3 prefill MLP
    b->Args({512, 2048, 6144, bf16, 0});
    b->Args({1324, 10752, 1536, bf16, 0});  // Yak DiT single-block linear1 at 512²
    b->Args({1324, 1536, 6144, bf16, 0});   // Yak DiT MLP down
    b->Args({1024, 3072, 1024, bf16, 0});   // AIMv2 qkv
    b->Args({256, 65532, 4096, bf16, 0});   // AIMv2 visual head (1 GB as f32)
  }
  // Quantized weights at the prefill and DiT shapes.
  for (int64_t type : {1, 2}) {
    b->Args({512, 6144, 2048, 1, type});
    b->Args({1324, 10752, 1536, 1, type});
    b->Args({1324, 1536, 6144, 1, type});
  }
}

// Args: Lq, Lk, q_heads, kv_heads, D, causal, bf16 mode.
void BM_Attention(benchmark::State& st) {
  const int64_t Lq = st.range(0), Lk = st.range(1), Hq = st.range(2), Hk = st.range(3),
                D = st.range(4);
  const bool causal = st.range(5) != 0;
  const ops::Context c = ctx(st.range(6));
  Tensor q = random_tensor({Lq, Hq * D}, 1, 1.0f, DType::F32);
  Tensor k = random_tensor({Lk, Hk * D}, 2, 1.0f, DType::F32);
  Tensor v = random_tensor({Lk, Hk * D}, 3, 1.0f, DType::F32);
  const float scale = 1.0f / std::sqrt(float(D));
  for (auto _ : st)
    benchmark::DoNotOptimize(
        ops::attention(c, q, k, v, int(Hq), int(Hk), scale, causal).device_ptr());
  double flops = 4.0 * double(Lq) * double(Lk) * double(D) * double(Hq);
  if (causal && Lq > 1) flops /= 2;
  st.counters["GFLOP/s"] =
      benchmark::Counter(double(st.iterations()) * flops / 1e9, benchmark::Counter::kIsRate);
}

void AttentionArgs(benchmark::internal::Benchmark* b) {
  for (int64_t bf16 : {1, 0}) {
    b->Args({1024, 1024, 8, 8, 128, 0, bf16});    // AIMv2 448²
    b->Args({1324, 1324, 12, 12, 128, 0, bf16});  // Yak DiT 512² joint attention
    b->Args({4096, 4096, 12, 12, 128, 0, bf16});  // Yak DiT 1024² image tokens
    b->Args({512, 512, 16, 8, 128, 1, bf16});     // Qwen3 prefill (GQA, causal)
    b->Args({1, 1024, 16, 8, 128, 1, bf16});      // Qwen3 decode at 1k context
  }
}

// Decode attention (one query, Qwen3 GQA 16/8 heads of 128) over each of 28 layers' caches in
// turn, so every call streams its K/V from DRAM as a decode step does. Args: cached tokens.
void BM_AttentionDecodeCold(benchmark::State& st) {
  const int64_t Lk = st.range(0), Hq = 16, Hk = 8, D = 128, layers = 28;
  const ops::Context c = ctx(1);
  std::vector<Tensor> ks, vs;
  for (int64_t i = 0; i < layers; ++i) {
    ks.push_back(random_tensor({Lk, Hk * D}, 2 + 2 * uint64_t(i), 1.0f, DType::F32));
    vs.push_back(random_tensor({Lk, Hk * D}, 3 + 2 * uint64_t(i), 1.0f, DType::F32));
  }
  Tensor q = random_tensor({1, Hq * D}, 1, 1.0f, DType::F32);
  const float scale = 1.0f / std::sqrt(float(D));
  size_t i = 0;
  for (auto _ : st) {
    const size_t l = i++ % size_t(layers);
    benchmark::DoNotOptimize(
        ops::attention(c, q, ks[l], vs[l], int(Hq), int(Hk), scale, true).device_ptr());
  }
  st.counters["GB/s"] = benchmark::Counter(
      double(st.iterations()) * double(2 * Lk * Hk * D * 4) / 1e9, benchmark::Counter::kIsRate);
}

void ElementwiseArgs(benchmark::internal::Benchmark* b) {
  b->Arg(1324 * 6144);
}

// In place ops run on a fresh copy each iteration (counted in the time): applied repeatedly to
// one buffer the values would decay into denormals.
void BM_GeluTanh(benchmark::State& st) {
  Tensor x = random_tensor({st.range(0)}, 4, 1.0f, DType::F32);
  Tensor y = Tensor::empty(x.shape());
  for (auto _ : st) {
    std::memcpy(y.mutable_raw(), x.raw(), x.nbytes());
    ops::gelu_tanh_(ctx(0), y);
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * st.range(0) * 8);
}

void BM_Swiglu(benchmark::State& st) {
  Tensor g = random_tensor({st.range(0)}, 4, 1.0f, DType::F32);
  Tensor u = random_tensor({st.range(0)}, 5, 1.0f, DType::F32);
  for (auto _ : st) benchmark::DoNotOptimize(ops::swiglu(ctx(0), g, u).device_ptr());
  st.SetBytesProcessed(int64_t(st.iterations()) * st.range(0) * 12);
}

}  // namespace

BENCHMARK(BM_Linear)->Name("Gemv")->Apply(GemvArgs)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GemvCold)->Apply(GemvArgs)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Linear)->Name("Gemm")->Apply(GemmArgs)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Attention)->Apply(AttentionArgs)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AttentionDecodeCold)
    ->Arg(128)
    ->Arg(544)
    ->Arg(2048)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_GeluTanh)->Apply(ElementwiseArgs)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Swiglu)->Apply(ElementwiseArgs)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
