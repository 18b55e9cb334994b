// bf16 GEMM: the dispatched kernels (ops/cpu/kernels) against oneDNN's bf16 matmul on every shape
// the models use, interleaved (ours, oneDNN, next shape, ...) in one run. Not run by CTest:
//   OMP_NUM_THREADS=2 build/bench_gemm --benchmark_repetitions=3
//   (add --benchmark_report_aggregates_only=true for medians only)
// Both sides compute c[M,N] (f32) = a · w with a bf16-rounded activation and the bf16 weight in
// its stored layout, fp32 accumulation. Ours takes f32 activations and rounds them while packing
// (that conversion is in its time); oneDNN gets them already converted to bf16 and its primitive
// is created once per shape, outside the timed loop. GFLOP/s = 2·M·N·K per second.
// The GEMV benchmarks (M <= 4) compare the dispatched decode kernel with ops::linear.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstring>
#include <map>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <random>
#include <tuple>
#include <vector>

#include "core/dtype.hpp"
#include "core/tensor.hpp"
#include "ops/backend.hpp"
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/ops.hpp"

using namespace ovis;
namespace kernels = ovis::ops::cpu::kernels;

namespace {

std::vector<float> random_f32(int64_t n, uint32_t seed, float scale) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = d(g);
  return v;
}

std::vector<uint16_t> random_bf16(int64_t n, uint32_t seed, float scale) {
  std::vector<float> f = random_f32(n, seed, scale);
  std::vector<uint16_t> v(f.size());
  for (size_t i = 0; i < f.size(); ++i) v[i] = f32_to_bf16(f[i]);
  return v;
}

// Weights are large (up to 0.5 GB): one per (rows, cols) per process.
const std::vector<uint16_t>& weight(int64_t rows, int64_t cols) {
  static std::map<std::pair<int64_t, int64_t>, std::vector<uint16_t>> cache;
  auto key = std::make_pair(rows, cols);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, random_bf16(rows * cols, 7, 0.02f)).first;
  return it->second;
}

void set_counters(benchmark::State& st, int64_t M, int64_t N, int64_t K) {
  st.counters["GFLOP/s"] =
      benchmark::Counter(double(st.iterations()) * 2.0 * double(M) * double(N) * double(K) / 1e9,
                         benchmark::Counter::kIsRate);
}

// Args: M, N, K, weight layout (0: w[N,K] Linear, 1: w[K,N]).
void BM_Ours(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool kn = st.range(3) != 0;
  const auto& w = kn ? weight(K, N) : weight(N, K);
  std::vector<float> a = random_f32(M * K, 3, 1.0f), c(size_t(M * N));
  const int threads = omp_get_max_threads();
  for (auto _ : st) {
    kernels::gemm_bf16(M, N, K, a.data(), K, w.data(), kn ? N : K,
                       kn ? kernels::WeightLayout::KN : kernels::WeightLayout::NK, nullptr,
                       c.data(), N, threads);
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(st, M, N, K);
  st.SetLabel(kernels::kernel_variant());
}

void BM_OneDnn(benchmark::State& st) {
  using dnnl::memory;
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool kn = st.range(3) != 0;
  const auto& w = kn ? weight(K, N) : weight(N, K);
  std::vector<uint16_t> a = random_bf16(M * K, 3, 1.0f);
  std::vector<float> c(size_t(M * N));
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const memory::desc a_md({M, K}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc b_md({K, N}, memory::data_type::bf16,
                          kn ? memory::format_tag::ab : memory::format_tag::ba);
  const memory::desc c_md({M, N}, memory::data_type::f32, memory::format_tag::ab);
  dnnl::matmul prim(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), eng));
  memory a_mem(a_md, eng, a.data()), b_mem(b_md, eng, const_cast<uint16_t*>(w.data())),
      c_mem(c_md, eng, c.data());
  for (auto _ : st) {
    prim.execute(strm, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}});
    strm.wait();
    benchmark::DoNotOptimize(c.data());
  }
  set_counters(st, M, N, K);
}

void add_shape(int64_t M, int64_t N, int64_t K, int64_t kn = 0) {
  const std::string s = "/M" + std::to_string(M) + "_N" + std::to_string(N) + "_K" +
                        std::to_string(K) + (kn ? "_KN" : "");
  benchmark::RegisterBenchmark(("ours" + s).c_str(), BM_Ours)
      ->Args({M, N, K, kn})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark(("onednn" + s).c_str(), BM_OneDnn)
      ->Args({M, N, K, kn})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

void register_gemm_shapes() {
  // Qwen3-1.7B prefill of 512 tokens: q/o, k/v, gate/up, down.
  for (auto [n, k] :
       {std::pair<int64_t, int64_t>{2048, 2048}, {1024, 2048}, {6144, 2048}, {2048, 6144}})
    add_shape(512, n, k);
  // Yak DiT at 512² (1024 image + 300 text tokens): qkv, proj, MLP up/down, single-block
  // linear1/linear2.
  for (auto [n, k] : {std::pair<int64_t, int64_t>{4608, 1536},
                      {1536, 1536},
                      {6144, 1536},
                      {1536, 6144},
                      {10752, 1536},
                      {1536, 7680}})
    add_shape(1324, n, k);
  for (int64_t m : {1024, 2048, 4396}) {
    add_shape(m, 10752, 1536);
    add_shape(m, 1536, 7680);
  }
  // AIMv2 at 448² (1024 patches): qkv, proj, MLP up, MLP down.
  for (auto [n, k] :
       {std::pair<int64_t, int64_t>{3072, 1024}, {1024, 1024}, {2816, 1024}, {1024, 2816}})
    add_shape(1024, n, k);
  // Visual head (65532 x 4096) and the VTE product probs · vte[K, N] for 256 visual tokens.
  add_shape(256, 65532, 4096);
  add_shape(256, 2048, 65532, 1);
  // VAE mid-block attention linears (C = 512) at 512² and 1024².
  add_shape(4096, 512, 512);
  add_shape(16384, 512, 512);
}

// Decode: the dispatched GEMV against ops::linear (the op the models call today).
// Args: M, N, K, 0 = kernels::gemv_bf16, 1 = ops::linear in BF16 precision.
void BM_Gemv(benchmark::State& st) {
  const int64_t M = st.range(0), N = st.range(1), K = st.range(2);
  const bool via_op = st.range(3) != 0;
  const auto& w = weight(N, K);
  std::vector<float> x = random_f32(M * K, 3, 1.0f), y(static_cast<size_t>(M * N));
  static const auto backend = ops::make_backend(Device::cpu());
  const ops::Context ctx{backend.get(), ops::Precision::BF16};
  const ops::LinearWeights lw =
      ops::prepare_linear(ctx, Tensor::host_view(w.data(), {N, K}, DType::BF16, nullptr), nullptr);
  const Tensor xt = Tensor::from_vector(x, {M, K});
  const int threads = omp_get_max_threads();
  for (auto _ : st) {
    if (via_op)
      benchmark::DoNotOptimize(ops::linear(ctx, xt, lw).device_ptr());
    else
      kernels::gemv_bf16(M, N, K, x.data(), w.data(), nullptr, y.data(), threads);
    benchmark::DoNotOptimize(y.data());
  }
  st.counters["GB/s"] = benchmark::Counter(double(st.iterations()) * double(N * K * 2) / 1e9,
                                           benchmark::Counter::kIsRate);
}

void register_gemv_shapes() {
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 6144, 2048},
                         {1, 2048, 6144},
                         {1, 151936, 2048},
                         {4, 6144, 2048}})
    for (int64_t via_op : {0, 1})
      benchmark::RegisterBenchmark(
          ((via_op ? "linear" : "gemv") + std::string("/M") + std::to_string(m) + "_N" +
           std::to_string(n) + "_K" + std::to_string(k))
              .c_str(),
          BM_Gemv)
          ->Args({m, n, k, via_op})
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_gemm_shapes();
  register_gemv_shapes();
  benchmark::AddCustomContext("kernel_variant", kernels::kernel_variant());
  benchmark::AddCustomContext("cpu_isa", kernels::isa_name(kernels::cpu_isa()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
