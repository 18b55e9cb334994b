// bf16 GEMM, c[M,N] = bf16(a[M,K]) · w (+ bias), fp32 accumulation (kernels.hpp), compiled once
// per ISA. Goto/BLIS structure: the activations are rounded and packed once per call (shared by
// all threads, in row groups of <= 32 MiB); threads then claim chunks of C, and per (NC, KC)
// block a chunk packs each weight panel into per-thread scratch (pairs of k interleaved, as
// vdpbf16ps wants them) and runs a register-blocked MR x NR microkernel over every row tile of
// the chunk against it. The weight is never copied as a whole.
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

// The activations rounded and packed once per GEMM, shared by every thread: KC block kb of
// row i is at base + (kb * rows + i - row0) * kAStride. Packing them per chunk instead would
// round and re-read the whole f32 A (rows K floats apart) once per column chunk.
struct PackedA {
  PackA* base;
  int64_t row0, rows;
  const PackA* at(int64_t kb, int64_t row) const {
    return base + (kb * rows + row - row0) * kAStride;
  }
};

// Row i of A, every KC block, into `pa` (called by one thread per row).
void pack_a_full_row(const GemmProblem& p, const PackedA& pa, int64_t i) {
  const float* src = p.a + i * p.lda;
  PackA* dst = pa.base + (i - pa.row0) * kAStride;
  for (int64_t pc = 0, kb = 0; pc < p.K; pc += p.kc, ++kb)
    pack_a_row(src + pc, imin(p.kc, p.K - pc), dst + kb * pa.rows * kAStride);
}

// Where packed weight panel i lives: with one M block every panel is used right after packing
// and one slot serves all; with several, each panel keeps its slot for the next blocks.
struct PanelSlots {
  PackB* base;
  bool single;
  PackB* operator[](int64_t i) const { return single ? base : base + i * kBPanel; }
};

thread_local ThreadScratch t_apack, t_bpack;

// C rows [m0, m1) x columns [n0, n1), all of K, on the calling thread.
//
// The first M block packs each weight panel right before its tiles, while those tiles spread
// prefetches of the next panel's raw rows (the next one packed, across K and N blocks) over
// their runtime: weight rows are often 4 KiB apart, beyond the hardware prefetchers, and would
// otherwise stall the packing on DRAM.
void gemm_block(const GemmProblem& p, const PackedA& pa, int64_t m0, int64_t m1, int64_t n0,
                int64_t n1) {
  // Equal M blocks of at most kMC rows (whole tiles): a 1100-row block split 1024 + 76 would
  // leave most of the second block's packing unamortised.
  const int64_t mblocks = ceil_div(m1 - m0, kMC);
  const int64_t mcb = ceil_div(ceil_div(m1 - m0, mblocks), kMR) * kMR;
  const int64_t slots = p.packed ? 0 : mblocks == 1 ? 1 : ceil_div(imin(kNC, n1 - n0), kNR);
  const PanelSlots slot{
      slots ? static_cast<PackB*>(t_bpack.get(sizeof(PackB) * slots * kBPanel)) : nullptr,
      mblocks == 1};
  for (int64_t jc = n0; jc < n1; jc += kNC) {
    const int64_t nc = imin(kNC, n1 - jc);
    for (int64_t pc = 0; pc < p.K; pc += p.kc) {
      const int64_t kc = imin(p.kc, p.K - pc), ksteps = k_steps(kc);
      const bool first_k = pc == 0;
      for (int64_t ic = m0; ic < m1; ic += mcb) {
        const int64_t mc = imin(mcb, m1 - ic), tiles = ceil_div(mc, kMR);
        const bool first_m = ic == m0;
        const PackA* apack = pa.at(pc / p.kc, ic);
        for (int64_t jr = 0; jr < nc; jr += kNR) {
          const int64_t nr = imin(kNR, nc - jr);
          const PackB* bp = p.packed ? packed_panel(p, jc + jr, pc) : slot[jr / kNR];
          WeightPanel next{nullptr, 0, 0, 0};
          if (first_m && !p.packed) {
            pack_b(p, jc + jr, nr, pc, kc, slot[jr / kNR]);
            if (jr + kNR < nc) {
              next = weight_panel(p, jc + jr + kNR, imin(kNR, nc - jr - kNR), pc, kc);
            } else if (mblocks == 1 && pc + kc < p.K) {  // the first panel of the next K block
              next = weight_panel(p, jc, imin(kNR, nc), pc + kc, imin(p.kc, p.K - pc - kc));
            } else if (mblocks == 1 && jc + kNC < n1) {  // the first panel of the next N block
              next = weight_panel(p, jc + kNC, imin(kNR, n1 - jc - kNC), 0, p.kc);
            }
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

// The chunks of C that threads claim one at a time: column blocks of 2..8 NR panels (128..512
// columns; A is packed once for all of them, each chunk packs only its own weight panels), at
// least sixteen per thread where N allows, and row parts of >= 32 MR tiles where it does not. A
// static split into one block per thread would make every GEMM wait for its slowest thread;
// whenever the OS runs something else on one core (a kernel thread, another process) the other
// thread now takes over the remaining chunks instead of idling at the barrier. (Four chunks
// per thread instead of sixteen: LLM prefill ~5% slower, measured.)
struct Chunks {
  int64_t panels_per_chunk, col_chunks, row_parts;
  int64_t count() const { return col_chunks * row_parts; }
};
Chunks choose_chunks(int64_t M, int64_t N, int threads) {
  const int64_t mb = ceil_div(M, kMR), nb = ceil_div(N, kNR), want = 16 * int64_t(threads);
  const int64_t ppc = imin(nb, imax(2, imin(8, nb / want)));
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

// Rows of A packed at a time: the whole of A up to this many bytes of packed activations (the
// LLM prefill, the DiT at 512²), row groups of it beyond (each group packs the weight again).
constexpr int64_t kPackedABytes = int64_t(32) << 20;

}  // namespace

namespace {

// Packs A and runs the chunks of C (M > kGemvMaxRows or a layout the GEMV does not take).
void gemm_run(const GemmProblem& p, int threads) {
  const int64_t M = p.M, N = p.N, K = p.K;
  int T = resolve_threads(threads);
  // Below ~2 M multiply-adds a second thread costs more than it saves.
  if (double(M) * double(N) * double(K) < double(1 << 21)) T = 1;
  if (omp_in_parallel()) T = 1;

  const int64_t row_bytes = ceil_div(K, p.kc) * kAStride * int64_t(sizeof(PackA));
  const int64_t groups = ceil_div(M, imax(kMR, kPackedABytes / row_bytes));
  const int64_t group_rows = ceil_div(ceil_div(M, groups), kMR) * kMR;
  PackA* abuf = static_cast<PackA*>(t_apack.get(size_t(imin(group_rows, M) * row_bytes)));
  for (int64_t g0 = 0; g0 < M; g0 += group_rows) {
    const int64_t rows = imin(group_rows, M - g0);
    const PackedA pa{abuf, g0, rows};
    if (T == 1) {
      for (int64_t i = g0; i < g0 + rows; ++i) pack_a_full_row(p, pa, i);
      gemm_block(p, pa, g0, g0 + rows, 0, N);
      continue;
    }
    const Chunks ch = choose_chunks(rows, N, T);
#pragma omp parallel num_threads(T)
    {
#pragma omp for schedule(static)
      for (int64_t i = g0; i < g0 + rows; ++i) pack_a_full_row(p, pa, i);
#pragma omp for schedule(dynamic, 1)
      for (int64_t ci = 0; ci < ch.count(); ++ci) {
        const ChunkRange r = chunk_range(ch, rows, N, ci);
        if (r.m0 < r.m1 && r.n0 < r.n1) gemm_block(p, pa, g0 + r.m0, g0 + r.m1, r.n0, r.n1);
      }
    }
  }
}

bool fill_bias(int64_t M, int64_t N, int64_t K, const float* bias, float* c, int64_t ldc) {
  if (K > 0) return false;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) c[m * ldc + n] = bias ? bias[n] : 0.0f;
  return true;
}

}  // namespace

void gemm_bf16(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const uint16_t* w,
               int64_t ldw, WeightLayout layout, const float* bias, float* c, int64_t ldc,
               int threads) {
  if (M <= 0 || N <= 0 || fill_bias(M, N, K, bias, c, ldc)) return;
  if (M <= kGemvMaxRows && layout == WeightLayout::NK && ldw == K && lda == K && ldc == N)
    return gemv_bf16(M, N, K, a, w, bias, c, threads);
  gemm_run({M, N, K, block_k(K), a, lda, w, ldw, layout, bias, c, ldc}, threads);
}

void gemm_bf16_packed(int64_t M, int64_t N, int64_t K, const float* a, const void* wp,
                      const float* bias, float* c, int threads) {
  if (M <= 0 || N <= 0 || fill_bias(M, N, K, bias, c, N)) return;
  if (!kHasPackedWeights) packed_weights_unsupported("gemm_bf16_packed");
  if (M <= kGemvMaxRows) {
    const PackedOut o{wp, bias, c, N};
    return OVIS_KERNEL_NS::gemv_group_bf16_packed(M, K, a, &o, 1, threads);
  }
  GemmProblem p{M, N, K, block_k(K), a, K, nullptr, K, WeightLayout::NK, bias, c, N};
  p.packed = wp;
  gemm_run(p, threads);
}

}  // namespace ovis::ops::cpu::kernels::OVIS_KERNEL_NS
