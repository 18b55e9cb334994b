// bf16 GEMM, c[M,N] = bf16(a[M,K]) · w (+ bias), fp32 accumulation (kernels.hpp), compiled once
// per ISA. Goto/BLIS structure: each thread owns a block of C; per (NC, KC) block it packs the
// weight panel into per-thread scratch (pairs of k interleaved, as vdpbf16ps wants them), per
// (MC, KC) block it rounds and packs the activations, and a register-blocked MR x NR
// microkernel runs over the packed panels. The weight is never copied as a whole.
#include "ops/cpu/kernels/variant/gemm_tiles.hpp"

namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS {

namespace {

// Microkernel for MR rows (1..kMR) and one full kNR-column panel.
template <int R>
void tile_rows(int mr, int64_t ksteps, const PackA* a, const PackB* b, float* c, int64_t ldc,
               const float* bias, bool accumulate) {
  if constexpr (R > 0) {
    if (mr == R) return tile<R>(ksteps, a, b, c, ldc, bias, accumulate);
    tile_rows<R - 1>(mr, ksteps, a, b, c, ldc, bias, accumulate);
  }
}

// Panel of kNR columns of which only nr < kNR exist: run on a full-width copy.
void tile_partial(int mr, int64_t nr, int64_t ksteps, const PackA* a, const PackB* b, float* c,
                  int64_t ldc, const float* bias, bool accumulate) {
  alignas(64) float tmp[kMR * kNR];
  for (int r = 0; r < mr; ++r)
    for (int64_t j = 0; j < kNR; ++j)
      tmp[r * kNR + j] = j >= nr ? 0.0f : accumulate ? c[r * ldc + j] : bias ? bias[j] : 0.0f;
  tile_rows<kMR>(mr, ksteps, a, b, tmp, kNR, nullptr, true);
  for (int r = 0; r < mr; ++r)
    for (int64_t j = 0; j < nr; ++j) c[r * ldc + j] = tmp[r * kNR + j];
}

// The raw weight behind one kNR-column panel as `units` segments of `bytes` each, `stride`
// bytes apart (weight rows in the NK layout, k rows in the KN layout).
struct WeightPanel {
  const char* base;
  int64_t stride, units, bytes;
};
WeightPanel weight_panel(const GemmProblem& p, int64_t j, int64_t nr, int64_t k0, int64_t kc) {
  const int64_t stride = p.ldw * int64_t(sizeof(uint16_t));
  if (p.layout == WeightLayout::NK)
    return {reinterpret_cast<const char*>(p.w + j * p.ldw + k0), stride, nr, kc * 2};
  return {reinterpret_cast<const char*>(p.w + k0 * p.ldw + j), stride, kc, nr * 2};
}
// Segments [u0, u1) into L2.
void prefetch_segments(const WeightPanel& wp, int64_t u0, int64_t u1) {
  for (int64_t u = u0; u < u1; ++u)
    for (int64_t off = 0; off < wp.bytes; off += 64)
      _mm_prefetch(wp.base + u * wp.stride + off, _MM_HINT_T1);
}

// Activation rows [i0, i0 + mc) x k [k0, k0 + kc), rounded into the PackA block. Rows are K
// floats apart (often a page or more), so each row is fetched a few rows ahead.
void pack_a(const GemmProblem& p, int64_t i0, int64_t mc, int64_t k0, int64_t kc, PackA* dst) {
  constexpr int64_t kAhead = 4;
  const int64_t bytes = kc * int64_t(sizeof(float));
  for (int64_t r = 0; r < mc; ++r) {
    if (r + kAhead < mc) {
      const char* next = reinterpret_cast<const char*>(p.a + (i0 + r + kAhead) * p.lda + k0);
      for (int64_t off = 0; off < bytes; off += 64) _mm_prefetch(next + off, _MM_HINT_T0);
    }
    pack_a_row(p.a + (i0 + r) * p.lda + k0, kc, dst + r * kAStride);
  }
}

// Where packed weight panel i lives: with one M block every panel is used right after packing
// and one L1-sized slot serves all; with several, each panel keeps its slot for the next blocks.
struct PanelSlots {
  PackB* base;
  bool single;
  PackB* operator[](int64_t i) const { return single ? base : base + i * kBPanel; }
};
constexpr int64_t kPanelSlots = ceil_div(kNC, kNR);

// C rows [m0, m1) x columns [n0, n1), all of K, on the calling thread.
//
// The first M block packs each weight panel right before its tiles, while those tiles spread
// prefetches of the next panel's raw rows over their runtime: weight rows are often 4 KiB
// apart, beyond the hardware prefetchers, and would otherwise stall the packing on DRAM.
void gemm_block(const GemmProblem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1, PackA* apack,
                PackB* bpack) {
  // Equal M blocks of at most kMC rows (whole tiles): a 1100-row block split 1024 + 76 would
  // leave most of the second block's packing unamortised.
  const int64_t mblocks = ceil_div(m1 - m0, kMC);
  const int64_t mcb = ceil_div(ceil_div(m1 - m0, mblocks), kMR) * kMR;
  const PanelSlots slot{bpack, mblocks == 1};
  for (int64_t jc = n0; jc < n1; jc += kNC) {
    const int64_t nc = imin(kNC, n1 - jc);
    for (int64_t pc = 0; pc < p.K; pc += kKC) {
      const int64_t kc = imin(kKC, p.K - pc), ksteps = k_steps(kc);
      const bool first_k = pc == 0;
      for (int64_t ic = m0; ic < m1; ic += mcb) {
        const int64_t mc = imin(mcb, m1 - ic), tiles = ceil_div(mc, kMR);
        const bool first_m = ic == m0;
        pack_a(p, ic, mc, pc, kc, apack);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t nr = imin(kNR, nc - jr);
          PackB* bp = slot[jr / kNR];
          WeightPanel next{nullptr, 0, 0, 0};
          if (first_m) {
            pack_b(p, jc + jr, nr, pc, kc, bp);
            if (jr + kNR < nc)
              next = weight_panel(p, jc + jr + kNR, imin(kNR, nc - jr - kNR), pc, kc);
          }
          const float* bias = first_k && p.bias ? p.bias + jc + jr : nullptr;
          for (int64_t t = 0; t < tiles; ++t) {
            const int64_t ir = t * kMR;
            const int mr = int(imin(kMR, mc - ir));
            float* c = p.c + (ic + ir) * p.ldc + jc + jr;
            const PackA* ap = apack + ir * kAStride;
            if (nr == kNR)
              tile_rows<kMR>(mr, ksteps, ap, bp, c, p.ldc, bias, !first_k);
            else
              tile_partial(mr, nr, ksteps, ap, bp, c, p.ldc, bias, !first_k);
            if (next.base)
              prefetch_segments(next, next.units * t / tiles, next.units * (t + 1) / tiles);
          }
        }
      }
    }
  }
}

// The chunks of C that threads claim one at a time: column blocks of 4..8 NR panels (256..512
// columns; each chunk packs its own A rows, which costs < 2% at that width), at least four per
// thread where N allows, and row parts of >= 32 MR tiles where it does not. A static split into
// one block per thread would make every GEMM wait for its slowest thread; whenever the OS runs
// something else on one core (a kernel thread, another process) the other thread now takes over
// the remaining chunks instead of idling at the barrier.
struct Chunks {
  int64_t panels_per_chunk, col_chunks, row_parts;
  int64_t count() const { return col_chunks * row_parts; }
};
Chunks choose_chunks(int64_t M, int64_t N, int threads) {
  const int64_t mb = ceil_div(M, kMR), nb = ceil_div(N, kNR), want = 4 * int64_t(threads);
  const int64_t ppc = imin(nb, imax(4, imin(8, nb / want)));
  const int64_t cols = ceil_div(nb, ppc);
  const int64_t rows = cols >= want ? 1 : imax(1, imin(ceil_div(want, cols), mb / 32));
  return {ppc, cols, rows};
}

struct ChunkRange {
  int64_t m0, m1, n0, n1;
};
ChunkRange chunk_range(const Chunks& ch, int64_t M, int64_t N, int64_t c) {
  const int64_t mb = ceil_div(M, kMR);
  const int64_t mi = c / ch.col_chunks, nj = c % ch.col_chunks;
  const int64_t w = ch.panels_per_chunk * kNR;
  return {imin(M, mb * mi / ch.row_parts * kMR), imin(M, mb * (mi + 1) / ch.row_parts * kMR),
          imin(N, nj * w), imin(N, (nj + 1) * w)};
}

thread_local ThreadScratch t_apack, t_bpack;

}  // namespace

void gemm_bf16(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const uint16_t* w,
               int64_t ldw, WeightLayout layout, const float* bias, float* c, int64_t ldc,
               int threads) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) c[m * ldc + n] = bias ? bias[n] : 0.0f;
    return;
  }
  if (M <= kGemvMaxRows && layout == WeightLayout::NK && ldw == K && lda == K && ldc == N)
    return gemv_bf16(M, N, K, a, w, bias, c, threads);
  const GemmProblem p{M, N, K, a, lda, w, ldw, layout, bias, c, ldc};
  int T = resolve_threads(threads);
  // Below ~2 M multiply-adds a second thread costs more than it saves.
  if (double(M) * double(N) * double(K) < double(1 << 21)) T = 1;
  if (T == 1 || omp_in_parallel()) {
    PackA* ap = static_cast<PackA*>(t_apack.get(sizeof(PackA) * kMC * kAStride));
    PackB* bp = static_cast<PackB*>(t_bpack.get(sizeof(PackB) * kPanelSlots * kBPanel));
    return gemm_block(p, 0, M, 0, N, ap, bp);
  }
  const Chunks ch = choose_chunks(M, N, T);
#pragma omp parallel num_threads(T)
  {
    PackA* ap = static_cast<PackA*>(t_apack.get(sizeof(PackA) * kMC * kAStride));
    PackB* bp = static_cast<PackB*>(t_bpack.get(sizeof(PackB) * kPanelSlots * kBPanel));
#pragma omp for schedule(dynamic, 1)
    for (int64_t ci = 0; ci < ch.count(); ++ci) {
      const ChunkRange r = chunk_range(ch, M, N, ci);
      if (r.m0 < r.m1 && r.n0 < r.n1) gemm_block(p, r.m0, r.m1, r.n0, r.n1, ap, bp);
    }
  }
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
