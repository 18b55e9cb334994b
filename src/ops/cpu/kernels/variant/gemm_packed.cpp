// Prepacked bf16 weights (kernels.hpp): the packing itself and the decode GEMV that reads the
// packed panels, compiled once per ISA; only levels with kHasPackedWeights have a packed form
// (AVX512-BF16: [k pair][64 columns] panels of w(n, k) | w(n, k + 1) << 16).
//
// The GEMV splits K into the GEMM's blocks and adds them the way the GEMM's tile stores C
// (block 0: acc (+ bias), then acc + c), so a packed product gives bit-identical rows for any M.
// Each panel is one contiguous stream: no row strides for the prefetchers to lose.
#include "ops/cpu/kernels/variant/gemm_tiles.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

namespace {

#if defined(__AVX512BF16__)
struct PanelTask {
  const uint16_t* xb;  // [M][ldx] bf16, odd K padded with 0
  int64_t ldx, M, K, kc, panels_per_chunk;
  const PackedOut* outs;
  int count;
  int64_t first_chunk[kMaxGroup + 1];
};

// One panel of kNR outputs (nr valid) for M rows.
template <int M>
void gemv_panel(const PanelTask& t, const PackB* b, const float* bias, float* y, int64_t ldy,
                int64_t nr) {
  constexpr int V = int(kNR / 16);
  __m512 res[M][V];
  for (int64_t pc = 0; pc < t.K; pc += t.kc) {
    const int64_t q0 = k_steps(pc), q1 = q0 + k_steps(imin(t.kc, t.K - pc));
    __m512 acc[M][V];
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < V; ++j) acc[m][j] = _mm512_setzero_ps();
    for (int64_t q = q0; q < q1; ++q) {
      __m512bh bv[V];
      for (int j = 0; j < V; ++j) bv[j] = (__m512bh)_mm512_load_si512(b + q * kNR + 16 * j);
      for (int m = 0; m < M; ++m) {
        int32_t pair;
        std::memcpy(&pair, t.xb + m * t.ldx + 2 * q, 4);
        const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
        for (int j = 0; j < V; ++j) acc[m][j] = _mm512_dpbf16_ps(acc[m][j], bv[j], av);
      }
    }
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < V; ++j) {
        if (pc > 0)
          res[m][j] = _mm512_add_ps(acc[m][j], res[m][j]);
        else if (bias)
          res[m][j] = _mm512_add_ps(
              acc[m][j], _mm512_maskz_loadu_ps(first_n_mask16(nr - 16 * j), bias + 16 * j));
        else
          res[m][j] = acc[m][j];
      }
  }
  if (t.K <= 0)
    for (int m = 0; m < M; ++m)
      for (int j = 0; j < V; ++j)
        res[m][j] = bias ? _mm512_maskz_loadu_ps(first_n_mask16(nr - 16 * j), bias + 16 * j)
                         : _mm512_setzero_ps();
  for (int m = 0; m < M; ++m)
    for (int j = 0; j < V; ++j)
      if (nr > 16 * j)
        _mm512_mask_storeu_ps(y + m * ldy + 16 * j, first_n_mask16(nr - 16 * j), res[m][j]);
}

void run_panels(void* ctx, int64_t chunk) {
  const PanelTask& t = *static_cast<const PanelTask*>(ctx);
  int j = 0;
  while (chunk >= t.first_chunk[j + 1]) ++j;
  const PackedOut& o = t.outs[j];
  const int64_t p0 = (chunk - t.first_chunk[j]) * t.panels_per_chunk;
  const int64_t p1 = imin(ceil_div(o.n, kNR), p0 + t.panels_per_chunk);
  for (int64_t pi = p0; pi < p1; ++pi) {
    const int64_t n0 = pi * kNR, nr = imin(kNR, o.n - n0);
    const PackB* b = static_cast<const PackB*>(o.w) + pi * k_steps(t.K) * kNR;
    const float* bias = o.bias ? o.bias + n0 : nullptr;
    float* y = o.y + n0;
    switch (t.M) {
      case 1:
        gemv_panel<1>(t, b, bias, y, o.n, nr);
        break;
      case 2:
        gemv_panel<2>(t, b, bias, y, o.n, nr);
        break;
      case 3:
        gemv_panel<3>(t, b, bias, y, o.n, nr);
        break;
      default:
        gemv_panel<4>(t, b, bias, y, o.n, nr);
        break;
    }
  }
}

thread_local ThreadScratch t_xb;
#endif

}  // namespace

int64_t packed_bf16_bytes(int64_t N, int64_t K) {
  if (!kHasPackedWeights || N <= 0 || K <= 0) return 0;
  return ceil_div(N, kNR) * k_steps(K) * kNR * int64_t(sizeof(PackB));
}

void pack_bf16(int64_t N, int64_t K, const uint16_t* w, void* dst, int threads) {
  if (!kHasPackedWeights) packed_weights_unsupported("pack_bf16");
  if (N <= 0 || K <= 0) return;
  const GemmProblem p{N, N, K, block_k(K), nullptr, K, w, K, WeightLayout::NK, nullptr, nullptr, 0};
  const int64_t panels = ceil_div(N, kNR);
  PackB* out = static_cast<PackB*>(dst);
#pragma omp parallel for schedule(dynamic, 4) num_threads(resolve_threads(threads))
  for (int64_t pi = 0; pi < panels; ++pi)
    for (int64_t k0 = 0; k0 < K; k0 += kKC)
      pack_b(p, pi * kNR, imin(kNR, N - pi * kNR), k0, imin(kKC, K - k0),
             out + pi * k_steps(K) * kNR + k_steps(k0) * kNR);
}

void gemv_group_bf16_packed(int64_t M, int64_t K, const float* x, const PackedOut* outs, int count,
                            int threads) {
  if (!kHasPackedWeights) packed_weights_unsupported("gemv_group_bf16_packed");
#if defined(__AVX512BF16__)
  if (M <= 0 || count <= 0) return;
  int T = resolve_threads(threads);
  const int64_t ldx = 2 * k_steps(K);
  int64_t panels = 0;
  for (int j = 0; j < count; ++j) panels += ceil_div(outs[j].n, kNR);
  // Below ~256 KiB of weights a second thread costs more than it streams.
  if (panels * kNR * K < (int64_t(1) << 17)) T = 1;
  // Chunks of >= 128 KiB of panels, at least four per thread.
  const int64_t panel_bytes = k_steps(K) * kNR * int64_t(sizeof(PackB));
  const int64_t per_chunk =
      imax(1, imin(ceil_div(int64_t(1) << 17, imax(panel_bytes, 1)), panels / (4 * int64_t(T))));
  for (int64_t m0 = 0; m0 < M; m0 += kGemvMaxRows) {
    const int64_t mm = imin(kGemvMaxRows, M - m0);
    uint16_t* xb = static_cast<uint16_t*>(t_xb.get(size_t(mm * ldx) * sizeof(uint16_t)));
    for (int64_t m = 0; m < mm; ++m) {
      convert_to_bf16(x + (m0 + m) * K, K, xb + m * ldx);
      if (K & 1) xb[m * ldx + K] = 0;
    }
    PackedOut o[kMaxGroup];
    for (int j = 0; j < count; ++j) {
      o[j] = outs[j];
      o[j].y = outs[j].y + m0 * outs[j].n;
    }
    PanelTask t{xb, ldx, mm, K, block_k(K), per_chunk, o, count, {}};
    t.first_chunk[0] = 0;
    for (int j = 0; j < count; ++j)
      t.first_chunk[j + 1] = t.first_chunk[j] + ceil_div(ceil_div(o[j].n, kNR), per_chunk);
    parallel_chunks(T, t.first_chunk[count], run_panels, &t);
  }
#else
  (void)M, (void)K, (void)x, (void)outs, (void)count, (void)threads;
#endif
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
