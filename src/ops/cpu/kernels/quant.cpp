// Threading of the quantized-weight kernels (quant.hpp) over the active variant's QuantKernels.
// Compiled at the baseline ISA: nothing here executes an instruction the CPU may lack.
#include "ops/cpu/kernels/quant.hpp"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "core/error.hpp"
#include "core/quant_blocks.hpp"
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/cpu/kernels/variant_table.hpp"
#include "ops/cpu/kernels/work_pool.hpp"

namespace ovis::ops::cpu::kernels {

namespace {

constexpr int64_t kBlk = 32;
constexpr int64_t kGemvMaxRows = 4;
constexpr int64_t kPanelRows = 16;  // rows per weight panel (variant/quant.cpp)

// Activations quantised per block, in buffers reused by the calling thread.
struct ActBuffers {
  std::vector<int8_t> q;
  std::vector<float> d, ds;
  std::vector<int32_t> s;
  ActBlocks quantize(const QuantKernels& t, const float* x, int64_t M, int64_t K) {
    const int64_t nb = K / kBlk;
    q.resize(size_t(M * K));
    d.resize(size_t(M * nb));
    s.resize(size_t(M * nb));
    ds.resize(size_t(M * nb));
    if (M * K >= (int64_t(1) << 16)) {
#pragma omp parallel
      {
        const int64_t T = omp_get_num_threads(), i = omp_get_thread_num();
        const int64_t m0 = M * i / T, m1 = M * (i + 1) / T;
        t.quantize_act(x, K, m0, m1, q.data(), d.data(), s.data(), ds.data());
      }
    } else {
      t.quantize_act(x, K, 0, M, q.data(), d.data(), s.data(), ds.data());
    }
    return ActBlocks{q.data(), d.data(), s.data(), ds.data(), M, K};
  }
};

ActBuffers& act_buffers() {
  thread_local ActBuffers b;
  return b;
}

using GemvFn = void (*)(const ActBlocks&, const uint8_t*, int64_t, int64_t, const float*, float*,
                        int64_t);

struct GemvTiled {
  GemvFn fn;
  const ActBlocks* a;
  const uint8_t* w;
  int64_t N, rows_per_chunk;
  const float* bias;
  float* y;
};

// Weight rows [c·rows_per_chunk, ...) against every activation row, in groups of at most 4.
void gemv_tiled_chunk(void* ctx, int64_t c) {
  const GemvTiled& g = *static_cast<const GemvTiled*>(ctx);
  const ActBlocks& a = *g.a;
  const int64_t n0 = c * g.rows_per_chunk, n1 = std::min(g.N, n0 + g.rows_per_chunk);
  const int64_t nbk = a.K / kBlk;
  for (int64_t m = 0; m < a.M; m += kGemvMaxRows) {
    ActBlocks sub = a;
    sub.q = a.q + m * a.K;
    sub.d = a.d + m * nbk;
    sub.s = a.s + m * nbk;
    sub.ds = a.ds + m * nbk;
    sub.M = std::min(kGemvMaxRows, a.M - m);
    g.fn(sub, g.w, n0, n1, g.bias, g.y + m * g.N, g.N);
  }
}

// Weight rows in chunks small enough to stay in cache while every group of activation rows
// passes, claimed one at a time on the work pool (as the bf16 GEMV): decode runs these between
// the pool's other kernels, and an OpenMP region here would leave its team spinning on the cores
// the pool's helpers need next (a quarter of the q4_k decode samples sat in libgomp's spin).
// Each output element is computed by one chunk, so results do not depend on the thread count.
void gemv_tiled(GemvFn fn, const ActBlocks& a, const uint8_t* w, int64_t N, size_t row_bytes,
                const float* bias, float* y) {
  const int T = omp_get_max_threads();
  const int64_t cache_rows =
      std::max<int64_t>(16, int64_t((256 << 10) / std::max<size_t>(row_bytes, 1)));
  const int64_t balanced = ((N + 4 * T - 1) / (4 * T) + 15) / 16 * 16;
  const int64_t rows = std::max<int64_t>(16, std::min(cache_rows, balanced));
  const GemvTiled g{fn, &a, w, N, rows, bias, y};
  const bool parallel = int64_t(row_bytes) * N >= (int64_t(1) << 17);
  parallel_chunks(parallel ? T : 1, (N + rows - 1) / rows, gemv_tiled_chunk,
                  const_cast<GemvTiled*>(&g));
}

}  // namespace

void quant_linear(DType wtype, const void* w, int64_t N, int64_t K, const float* x, int64_t M,
                  const float* bias, float* y) {
  OVIS_ASSERT(dtype_is_quantized(wtype) && K % dtype_block_elems(wtype) == 0);
  const QuantKernels& t = active_variant_table().quant();
  const ActBlocks a = act_buffers().quantize(t, x, M, K);
  const auto* wp = static_cast<const uint8_t*>(w);
  const bool q4 = wtype == DType::Q4_K;
  const GemvFn gemv = q4 ? t.gemv_q4_k : t.gemv_q8_0;
  const size_t row_bytes = dtype_bytes(wtype, K);
  // The panel GEMM packs its columns once per call; below ~16 rows that costs more than the
  // products, and the GEMV's direct reads win.
  if (!t.gemm_rows || M < 16) {
    gemv_tiled(gemv, a, wp, N, row_bytes, bias, y);
    return;
  }
  const int T = omp_get_max_threads();
  // Column chunks (multiples of 32): at least 4 per thread for balance, at most 512 so that the
  // packed panels stay small.
  int64_t chunk = (N + 4 * T - 1) / (4 * T);
  chunk = std::clamp<int64_t>((chunk + 31) / 32 * 32, 32, 512);
  const int64_t nchunks = (N + chunk - 1) / chunk;
  const size_t scratch_bytes = t.gemm_scratch_bytes(q4, chunk, K);
#pragma omp parallel
  {
    // Reused by the thread across calls (grow-only, a few MiB): the packers write every byte
    // the tiles read.
    thread_local std::vector<uint8_t> scratch;
    if (scratch.size() < scratch_bytes) scratch.resize(scratch_bytes);
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; ++c) {
      const int64_t n0 = c * chunk, n1 = std::min(N, n0 + chunk);
      t.gemm_rows(q4, a, wp, n0, n1, bias, y, N, scratch.data());
    }
  }
}

int64_t quant_packed_bytes(DType wtype, int64_t N, int64_t K) {
  const QuantKernels& t = active_variant_table().quant();
  if (!t.packed_bytes || !dtype_is_quantized(wtype) || N <= 0 || K <= 0 ||
      K % dtype_block_elems(wtype) != 0)
    return 0;
  return t.packed_bytes(wtype == DType::Q4_K, N, K);
}

void quant_pack(DType wtype, const void* w, int64_t N, int64_t K, void* dst,
                const std::function<void(int64_t)>& rows_done) {
  const QuantKernels& t = active_variant_table().quant();
  if (!t.pack_panels) fail("internal error: quant_pack on a kernel level without panels");
  const bool q4 = wtype == DType::Q4_K;
  const int64_t panels = (N + kPanelRows - 1) / kPanelRows;
  const int64_t bytes = t.packed_bytes(q4, kPanelRows, K);
  // Chunks of about 16 MiB of panels, so that rows_done can hand back what was read before the
  // whole weight is resident twice.
  const int64_t chunk = std::max<int64_t>(16, (int64_t(16) << 20) / std::max<int64_t>(bytes, 1));
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t p0 = 0; p0 < panels; p0 += chunk) {
    const int64_t p1 = std::min(panels, p0 + chunk);
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t p = p0; p < p1; ++p)
      t.pack_panels(q4, static_cast<const uint8_t*>(w), N, K, p, p + 1, out + p * bytes);
    if (rows_done) rows_done(std::min(N, p1 * kPanelRows));
  }
}

namespace {

struct PackedTask {
  const QuantKernels* t;
  bool q4;
  const ActBlocks* a;
  const uint8_t* wp;
  int64_t N, cols;
  const float* bias;
  float* y;
};

void packed_chunk(void* ctx, int64_t c) {
  const PackedTask& k = *static_cast<const PackedTask*>(ctx);
  const int64_t n0 = c * k.cols, n1 = std::min(k.N, n0 + k.cols);
  k.t->gemm_packed(k.q4, *k.a, k.wp, k.N, n0, n1, k.bias, k.y);
}

// Pairs of panels (the tile's 32 columns) covering N rows.
int64_t panel_pairs(int64_t N) {
  return (N + 2 * kPanelRows - 1) / (2 * kPanelRows);
}

// Panel pairs per chunk of a decode GEMV: >= 128 KiB of panels each and at least four chunks
// per thread (see gemv_tiled).
int64_t gemv_pairs_per_chunk(const QuantKernels& t, bool q4, int64_t N, int64_t K, int T) {
  const int64_t pair_bytes = t.packed_bytes(q4, 2 * kPanelRows, K);
  return std::max<int64_t>(
      1, std::min<int64_t>((int64_t(128) << 10) / std::max<int64_t>(pair_bytes, 1) + 1,
                           panel_pairs(N) / (4 * T)));
}

struct GroupTask {
  PackedTask part[kMaxGroup];
  int64_t first[kMaxGroup + 1];  // chunk index of each weight's first chunk, then the total
};

void group_chunk(void* ctx, int64_t c) {
  const GroupTask& g = *static_cast<const GroupTask*>(ctx);
  int j = 0;
  while (c >= g.first[j + 1]) ++j;
  packed_chunk(const_cast<PackedTask*>(&g.part[j]), c - g.first[j]);
}

}  // namespace

void quant_linear_packed(DType wtype, const void* wp, int64_t N, int64_t K, const float* x,
                         int64_t M, const float* bias, float* y) {
  if (M <= kGemvMaxRows) {
    const QuantPackedOut out{wtype, wp, bias, y, N};
    quant_gemv_packed_group(&out, 1, K, x, M);
    return;
  }
  const QuantKernels& t = active_variant_table().quant();
  if (!t.gemm_packed) fail("internal error: quant_linear_packed on a kernel level without panels");
  const bool q4 = wtype == DType::Q4_K;
  const ActBlocks a = act_buffers().quantize(t, x, M, K);
  const int T = omp_get_max_threads();
  // Chunks of panel pairs: at least four per thread and at most 512 columns, in an OpenMP
  // region like the bf16 GEMM.
  const int64_t pairs = panel_pairs(N);
  const int64_t per_chunk = std::clamp<int64_t>((pairs + 4 * T - 1) / (4 * T), 1, 16);
  PackedTask task{&t,   q4, &a, static_cast<const uint8_t*>(wp), N, per_chunk * 2 * kPanelRows,
                  bias, y};
  const int64_t nchunks = (pairs + per_chunk - 1) / per_chunk;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < nchunks; ++c) packed_chunk(&task, c);
}

void quant_gemv_packed_group(const QuantPackedOut* outs, int count, int64_t K, const float* x,
                             int64_t M) {
  const QuantKernels& t = active_variant_table().quant();
  if (!t.gemm_packed)
    fail("internal error: quant_gemv_packed_group on a kernel level without panels");
  OVIS_ASSERT(count > 0 && count <= kMaxGroup && M <= kGemvMaxRows);
  const ActBlocks a = act_buffers().quantize(t, x, M, K);
  const int T = omp_get_max_threads();
  GroupTask g{};
  int64_t bytes = 0;
  for (int j = 0; j < count; ++j) {
    const QuantPackedOut& o = outs[j];
    const bool q4 = o.wtype == DType::Q4_K;
    const int64_t per_chunk = gemv_pairs_per_chunk(t, q4, o.n, K, T);
    g.part[j] = PackedTask{
        &t, q4, &a, static_cast<const uint8_t*>(o.w), o.n, per_chunk * 2 * kPanelRows, o.bias, o.y};
    g.first[j + 1] = g.first[j] + (panel_pairs(o.n) + per_chunk - 1) / per_chunk;
    bytes += t.packed_bytes(q4, o.n, K);
  }
  parallel_chunks(bytes >= (int64_t(1) << 17) ? T : 1, g.first[count], group_chunk, &g);
}

void dequantize_rows(DType wtype, const void* w, int64_t D, const int64_t* ids, int64_t n,
                     float* out) {
  const size_t row_bytes = dtype_bytes(wtype, D);
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = base + size_t(ids[i]) * row_bytes;
    if (wtype == DType::Q8_0)
      dequantize_row_q8_0(reinterpret_cast<const BlockQ8_0*>(r), out + i * D, D);
    else if (wtype == DType::Q4_K)
      dequantize_row_q4_k(reinterpret_cast<const BlockQ4_K*>(r), out + i * D, D);
    else
      fail("internal error: dequantize_rows of ", dtype_name(wtype));
  }
}

void quant_matmul(DType btype, const void* b, int64_t K, int64_t N, const float* a, int64_t M,
                  float* y) {
  // y = Σ_k a[:, k] ⊗ B[k, :]: B's rows are dequantized in slabs and multiplied in f32.
  const size_t row_bytes = dtype_bytes(btype, N);
  const auto* base = static_cast<const uint8_t*>(b);
  std::fill(y, y + M * N, 0.0f);
  constexpr int64_t kSlab = 512;
  std::vector<float> slab(size_t(kSlab * N));
  for (int64_t k0 = 0; k0 < K; k0 += kSlab) {
    const int64_t kk = std::min(kSlab, K - k0);
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < kk; ++r) {
      const uint8_t* row = base + size_t(k0 + r) * row_bytes;
      if (btype == DType::Q8_0)
        dequantize_row_q8_0(reinterpret_cast<const BlockQ8_0*>(row), slab.data() + r * N, N);
      else
        dequantize_row_q4_k(reinterpret_cast<const BlockQ4_K*>(row), slab.data() + r * N, N);
    }
    if (dnnl_sgemm('N', 'N', M, N, kk, 1.0f, a + k0, K, slab.data(), N, 1.0f, y, N) != dnnl_success)
      fail("internal error: dnnl_sgemm failed (", M, "x", N, "x", kk, ")");
  }
}

}  // namespace ovis::ops::cpu::kernels
