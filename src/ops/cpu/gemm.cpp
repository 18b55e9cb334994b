// GEMM for the CPU backend. BF16 precision: the run-time dispatched kernels of kernels/ (GEMV for
// decode-sized M, packed bf16 GEMM above it), oneDNN's matmul when the CPU has AMX. F32: oneDNN
// sgemm/matmul, 16-bit weights widened block by block.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/dnnl_util.hpp"
#include "ops/cpu/kernels/kernels.hpp"
#include "ops/cpu/kernels/quant.hpp"
#include "ops/cpu/plan_cache.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

namespace cpu {

dnnl::engine& dnnl_engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream s(dnnl_engine());
  return s;
}

}  // namespace cpu

namespace {

using cpu::dnnl_engine;
using cpu::dnnl_stream;
using dnnl::memory;

constexpr int64_t kGemvMaxRows = 4;

memory::data_type dnnl_dt(DType t) {
  switch (t) {
    case DType::F32:
      return memory::data_type::f32;
    case DType::BF16:
      return memory::data_type::bf16;
    case DType::F16:
      return memory::data_type::f16;
    default:
      fail("internal error: GEMM on unsupported dtype ", dtype_name(t));
  }
}

struct GemmKey {
  int64_t m, n, k;
  DType a, b;
  bool b_transposed, bias;
  bool operator<(const GemmKey& o) const {
    return std::tie(m, n, k, a, b, b_transposed, bias) <
           std::tie(o.m, o.n, o.k, o.a, o.b, o.b_transposed, o.bias);
  }
};

}  // namespace

// oneDNN matmul primitives by problem shape, owned by the backend.
struct cpu::GemmPlans {
  PlanCache<GemmKey, dnnl::matmul> plans{64};

  dnnl::matmul get(const GemmKey& key) {
    return plans.get(key, [](const GemmKey& k) {
      memory::desc a_md({k.m, k.k}, dnnl_dt(k.a), memory::format_tag::ab);
      memory::desc b_md({k.k, k.n}, dnnl_dt(k.b),
                        k.b_transposed ? memory::format_tag::ba : memory::format_tag::ab);
      memory::desc c_md({k.m, k.n}, memory::data_type::f32, memory::format_tag::ab);
      dnnl::matmul::primitive_desc pd;
      if (k.bias) {
        memory::desc bias_md({1, k.n}, memory::data_type::f32, memory::format_tag::ab);
        pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, bias_md, c_md),
                                          dnnl_engine());
      } else {
        pd = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), dnnl_engine());
      }
      return dnnl::matmul(pd);
    });
  }
};

namespace {

// a [M,K] f32 or bf16, b is [N,K] (transposed) or [K,N], c [M,N] f32.
void dnnl_gemm(cpu::GemmPlans& plans, const void* a, DType adt, const void* b, DType bdt,
               bool b_transposed, const float* bias, float* c, int64_t m, int64_t n, int64_t k) {
  GemmKey key{m, n, k, adt, bdt, b_transposed, bias != nullptr};
  dnnl::matmul prim = plans.get(key);
  memory a_mem({{m, k}, dnnl_dt(adt), memory::format_tag::ab}, dnnl_engine(), const_cast<void*>(a));
  memory b_mem(
      {{k, n}, dnnl_dt(bdt), b_transposed ? memory::format_tag::ba : memory::format_tag::ab},
      dnnl_engine(), const_cast<void*>(b));
  memory c_mem({{m, n}, memory::data_type::f32, memory::format_tag::ab}, dnnl_engine(), c);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, b_mem}, {DNNL_ARG_DST, c_mem}};
  if (bias)
    args.emplace(DNNL_ARG_BIAS, memory({{1, n}, memory::data_type::f32, memory::format_tag::ab},
                                       dnnl_engine(), const_cast<float*>(bias)));
  prim.execute(dnnl_stream(), args);
  dnnl_stream().wait();
}

Tensor to_bf16(const Tensor& x) {
  Tensor r = Tensor::empty(x.shape(), DType::BF16);
  cpu::kernels::convert_f32_to_bf16(x.numel(), x.f32(), r.mutable_data<uint16_t>(), 0);
  return r;
}

// ---- 16-bit weights widened to f32 ----

void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (dnnl_sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc) != dnnl_success)
    fail("internal error: dnnl_sgemm failed (", m, "x", n, "x", k, ")");
}

// y[M, N] = x[M, K] · W (+ bias) in f32 for a 16-bit weight W, given as w[N, K] (linear,
// nk = true) or b[K, N] (matmul). Each task widens one [<=256 x <=1024] weight block into a
// per-thread scratch (1 MiB) and runs a single-threaded sgemm on it, so the weight is read once
// and never upcast as a whole.
void gemm_f32_w16(const float* x, const uint16_t* w, bool f16, bool nk, const float* bias, float* y,
                  int64_t M, int64_t N, int64_t K) {
  constexpr int64_t kNb = 256, kKb = 1024;
  const int64_t nblocks = (N + kNb - 1) / kNb;
#pragma omp parallel
  {
    thread_local std::vector<float> scratch(static_cast<size_t>(kNb * kKb));  // reused, 1 MiB
#pragma omp for schedule(dynamic, 1)
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      const int64_t n0 = blk * kNb, nn = std::min(kNb, N - n0);
      for (int64_t k0 = 0; k0 < K; k0 += kKb) {
        const int64_t kk = std::min(kKb, K - k0);
        const float beta = k0 == 0 ? 0.0f : 1.0f;
        if (nk) {
          for (int64_t i = 0; i < nn; ++i)
            cpu::kernels::widen_16(w + (n0 + i) * K + k0, f16, kk, scratch.data() + i * kk);
          sgemm('N', 'T', M, nn, kk, x + k0, K, scratch.data(), kk, beta, y + n0, N);
        } else {
          for (int64_t i = 0; i < kk; ++i)
            cpu::kernels::widen_16(w + (k0 + i) * N + n0, f16, nn, scratch.data() + i * nn);
          sgemm('N', 'N', M, nn, kk, x + k0, K, scratch.data(), nn, beta, y + n0, N);
        }
      }
      if (bias)
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = n0; n < n0 + nn; ++n) y[m * N + n] += bias[n];
    }
  }
}

namespace kernels = cpu::kernels;

// A Linear weight in the panel layout of the kernel level active at bind time: bf16 weights for
// the bf16 GEMM (kernels.hpp pack_bf16, BF16 precision), Q8_0/Q4_K weights in 16-row panels
// (kernels/quant.hpp quant_pack, either precision: quantized weights always take the integer
// kernels). A weight in the model's own memory (synthetic, converted) is repacked at
// bind time and its stored form released (lw.w keeps only its shape, a zero-page view: the
// repacked form never doubles the weight memory). A view of a mapped file is repacked on first
// use, like the convolution layouts (`ask` never reads the DiT's weights, so it never packs or
// pages them in), and its pages are then dropped from the process.
struct PackedLinear final : PreparedWeight {
  kernels::Isa isa = kernels::Isa::Generic;
  bool stored_released = false;  // lw.w is a zero-page view
  bool quantized = false;        // quant_pack panels
  std::once_flag packed;
  Tensor data;  // packed_bf16_bytes or quant_packed_bytes (an opaque byte tensor)
};

// Pages lying wholly inside a read-only view (a mapped checkpoint shard) are handed back once
// repacked: MADV_PAGEOUT reclaims a file's clean pages from this process (they would fault back
// in if read) and never discards data, whatever memory the view turns out to hold.
// Bytes [from, to) of w's storage: where w views a mapped file, its whole pages in that range are
// handed back to the page cache. Returns the end of what was handed back (a page boundary
// relative to w, the next call's `from`).
size_t release_mapped_pages(const Tensor& w, size_t from, size_t to) {
  if (w.writable()) return to;  // own memory: freed with the last reference
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(w.raw());
  const uintptr_t first = (begin + from + page - 1) / page * page,
                  last = (begin + to) / page * page;
  if (last <= first) return from;
  madvise(reinterpret_cast<void*>(first), last - first, MADV_PAGEOUT);
  return last - begin;
}
void release_mapped_pages(const Tensor& w) {
  release_mapped_pages(w, 0, w.nbytes());
}

void pack_into(PackedLinear& p, const Tensor& w) {
  const int64_t N = w.dim(0), K = w.dim(1);
  if (p.quantized) {
    Tensor data = Tensor::empty({kernels::quant_packed_bytes(w.dtype(), N, K)}, DType::U8);
    // The rows already packed are handed back as packing goes on: a mapped weight is never
    // resident twice (the tied LM head of a q4_k file is a third of its per-token bytes).
    const size_t row_bytes = dtype_bytes(w.dtype(), K);
    size_t released = 0;
    kernels::quant_pack(w.dtype(), w.raw(), N, K, data.mutable_raw(), [&](int64_t rows) {
      released = release_mapped_pages(w, released, size_t(rows) * row_bytes);
    });
    p.data = std::move(data);
    return;
  }
  Tensor data = Tensor::empty({kernels::packed_bf16_bytes(N, K)}, DType::U8);
  kernels::pack_bf16(N, K, w.data<uint16_t>(), data.mutable_raw(), 0);
  p.data = std::move(data);
  release_mapped_pages(w);
}

// The packed form for a call in context c (packing it on first use), or null where the stored
// weight is read instead. A packed form only runs where it was made: on the level that packed
// it (set_active_isa() can lower the level later), and bf16 panels in BF16 precision only; a
// released stored form leaves no other way, which is an error.
const void* packed_weight(const Context& c, const LinearWeights& lw) {
  auto* p = dynamic_cast<PackedLinear*>(lw.prepared.get());
  if (!p) return nullptr;
  if ((!p->quantized && c.precision != Precision::BF16) || p->isa != kernels::active_isa()) {
    if (!p->stored_released) return nullptr;
    fail("internal error: a ", dtype_name(lw.w.dtype()), " Linear weight was repacked",
         p->quantized ? "" : " for BF16 precision", " on the ", kernels::isa_name(p->isa),
         " kernels and cannot run in ", precision_name(c.precision), " on ",
         kernels::isa_name(kernels::active_isa()), " (", shape_str(lw.w.shape()),
         "): bind the model again");
  }
  std::call_once(p->packed, [&] { pack_into(*p, lw.w); });
  return p->data.raw();
}

const float* bias_of(const LinearWeights& lw) {
  return lw.b.defined() ? lw.b.f32() : nullptr;
}

// One output [..., n_j] per weight of a group.
std::vector<Tensor> group_outputs(const Tensor& x, const std::vector<const LinearWeights*>& ws) {
  std::vector<Tensor> out;
  for (const LinearWeights* lw : ws) {
    Shape shape = x.shape();
    shape.back() = lw->w.dim(0);
    out.push_back(Tensor::empty(shape));
  }
  return out;
}

}  // namespace

LinearWeights cpu::CpuBackend::prepare_linear(const Context& c, const Tensor& w, const Tensor* b,
                                              bool sole_user) {
  LinearWeights lw;
  lw.w = w;  // zero-copy: GEMM and GEMV read the stored dtype
  if (b) lw.b = prepare_f32(*b);
  if (w.ndim() != 2) return lw;
  // bf16: repacked on the AVX512-BF16 level (AMX keeps oneDNN's matmul, which reads the stored
  // form), sole users only. Q8_0/Q4_K: where the level has panels for the type (Q4_K from AVX2
  // on, Q8_0 with VNNI; kernels/quant.hpp), shared tables too (the tied LM head: a third of a
  // q4_k model's bytes per token); the stored form of a shared table stays (embedding rows are
  // read from it; a mapped one faults those few pages back in).
  const bool quantized = dtype_is_quantized(w.dtype());
  const bool bf16_panels = sole_user && c.precision == Precision::BF16 &&
                           w.dtype() == DType::BF16 &&
                           kernels::active_isa() == kernels::Isa::Avx512Bf16 &&
                           kernels::packed_bf16_bytes(w.dim(0), w.dim(1)) > 0;
  const bool quant_panels =
      quantized && kernels::quant_packed_bytes(w.dtype(), w.dim(0), w.dim(1)) > 0;
  if (!bf16_panels && !quant_panels) return lw;
  auto p = std::make_shared<PackedLinear>();
  p->isa = kernels::active_isa();
  p->quantized = quantized;
  if (w.writable() && sole_user) {
    std::call_once(p->packed, [&] { pack_into(*p, w); });
    p->stored_released = true;
    lw.w = Tensor::zero_view(w.shape(), w.dtype());
  }
  lw.prepared = std::move(p);
  return lw;
}

Tensor cpu::CpuBackend::linear(const Context& c, const Tensor& x, const LinearWeights& lw) {
  const Tensor& w = lw.w;
  const int64_t K = w.dim(1), N = w.dim(0);
  const int64_t M = x.numel() / K;
  Shape out_shape = x.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  const float* bptr = bias_of(lw);
  const bool bf16_mode = c.precision == Precision::BF16;
  float* yp = y.mutable_f32();

  if (const void* wp = packed_weight(c, lw)) {
    if (dtype_is_quantized(w.dtype()))
      kernels::quant_linear_packed(w.dtype(), wp, N, K, x.f32(), M, bptr, yp);
    else
      kernels::gemm_bf16_packed(M, N, K, x.f32(), wp, bptr, yp, 0);
    return y;
  }

  if (dtype_is_quantized(w.dtype())) {  // both precisions: block-quantized activations
    kernels::quant_linear(w.dtype(), w.raw(), N, K, x.f32(), M, bptr, yp);
    return y;
  }
  if (M <= kGemvMaxRows && w.dtype() != DType::F32) {
    const bool f16 = w.dtype() == DType::F16;
    if (bf16_mode && !f16)
      kernels::gemv_bf16(M, N, K, x.f32(), w.data<uint16_t>(), bptr, yp, 0);
    else
      kernels::gemv_w16(M, N, K, x.f32(), w.data<uint16_t>(), f16, bptr, yp, 0);
    return y;
  }
  // Below AMX the hand-written bf16 GEMM (kernels/) beats oneDNN's brgemm on the DiT's shapes;
  // with AMX oneDNN's tile kernels stay in charge.
  if (bf16_mode && w.dtype() == DType::BF16 && kernels::active_isa() < kernels::Isa::Amx) {
    kernels::gemm_bf16(M, N, K, x.f32(), K, w.data<uint16_t>(), K, kernels::WeightLayout::NK, bptr,
                       yp, N, 0);
    return y;
  }
  if (bf16_mode && w.dtype() == DType::BF16) {
    Tensor xb = to_bf16(x);
    dnnl_gemm(*gemm_, xb.raw(), DType::BF16, w.raw(), DType::BF16, true, bptr, yp, M, N, K);
  } else if (w.dtype() == DType::F32) {
    dnnl_gemm(*gemm_, x.raw(), DType::F32, w.raw(), DType::F32, true, bptr, yp, M, N, K);
  } else {
    gemm_f32_w16(x.f32(), w.data<uint16_t>(), w.dtype() == DType::F16, true, bptr, yp, M, N, K);
  }
  return y;
}

std::vector<Tensor> cpu::CpuBackend::linear_group(const Context& c, const Tensor& x,
                                                  const std::vector<const LinearWeights*>& ws) {
  const int64_t K = x.dim(-1), M = x.numel() / std::max<int64_t>(K, 1);
  // Repacked weights: the packed GEMV for every weight, in one parallel section.
  const void* packed[kernels::kMaxGroup] = {};
  int n_packed = 0;
  bool any_quantized = false;
  for (const LinearWeights* lw : ws)
    any_quantized = any_quantized || dtype_is_quantized(lw->w.dtype());
  // Block-quantized weights in panels at decode: x quantised once, one parallel section.
  if (any_quantized) {
    bool grouped =
        M <= kGemvMaxRows && K > 0 && !ws.empty() && int(ws.size()) <= kernels::kMaxGroup;
    for (size_t j = 0; grouped && j < ws.size(); ++j)
      grouped =
          dtype_is_quantized(ws[j]->w.dtype()) && (packed[j] = packed_weight(c, *ws[j])) != nullptr;
    if (!grouped) return Backend::linear_group(c, x, ws);
    std::vector<Tensor> out = group_outputs(x, ws);
    kernels::QuantPackedOut outs[kernels::kMaxGroup];
    for (size_t j = 0; j < ws.size(); ++j)
      outs[j] = {ws[j]->w.dtype(), packed[j], bias_of(*ws[j]), out[j].mutable_f32(),
                 ws[j]->w.dim(0)};
    kernels::quant_gemv_packed_group(outs, int(ws.size()), K, x.f32(), M);
    return out;
  }
  if (int(ws.size()) <= kernels::kMaxGroup)
    for (size_t j = 0; j < ws.size(); ++j)
      n_packed += (packed[j] = packed_weight(c, *ws[j])) != nullptr;
  if (M <= kGemvMaxRows && K > 0 && !ws.empty() && n_packed == int(ws.size())) {
    std::vector<Tensor> out = group_outputs(x, ws);
    kernels::PackedOut outs[kernels::kMaxGroup];
    for (size_t j = 0; j < ws.size(); ++j)
      outs[j] = {packed[j], bias_of(*ws[j]), out[j].mutable_f32(), ws[j]->w.dim(0)};
    kernels::gemv_group_bf16_packed(M, K, x.f32(), outs, int(ws.size()), 0);
    return out;
  }
  // The GEMV path of linear() for every weight, in one parallel section.
  bool grouped = M <= kGemvMaxRows && K > 0 && !ws.empty() &&
                 int(ws.size()) <= kernels::kMaxGroup && n_packed == 0;
  for (const LinearWeights* lw : ws)
    grouped = grouped && lw->w.dtype() == ws[0]->w.dtype() && lw->w.dtype() != DType::F32;
  if (!grouped) return Backend::linear_group(c, x, ws);
  const bool f16 = ws[0]->w.dtype() == DType::F16;
  std::vector<Tensor> out = group_outputs(x, ws);
  kernels::GemvOut outs[kernels::kMaxGroup];
  for (size_t j = 0; j < ws.size(); ++j)
    outs[j] = {ws[j]->w.data<uint16_t>(), bias_of(*ws[j]), out[j].mutable_f32(), ws[j]->w.dim(0)};
  if (c.precision == Precision::BF16 && !f16)
    kernels::gemv_group_bf16(M, K, x.f32(), outs, int(ws.size()), 0);
  else
    kernels::gemv_group_w16(M, K, x.f32(), outs, int(ws.size()), f16, 0);
  return out;
}

Tensor cpu::CpuBackend::matmul(const Context& c, const Tensor& a, const Tensor& b) {
  const int64_t K = b.dim(0), N = b.dim(1);
  const int64_t M = a.numel() / K;
  Shape out_shape = a.shape();
  out_shape.back() = N;
  Tensor y = Tensor::empty(out_shape);
  float* yp = y.mutable_f32();
  if (dtype_is_quantized(b.dtype())) {
    kernels::quant_matmul(b.dtype(), b.raw(), K, N, a.f32(), M, yp);
    return y;
  }
  if (c.precision == Precision::BF16 && b.dtype() == DType::BF16 &&
      kernels::active_isa() < kernels::Isa::Amx) {
    kernels::gemm_bf16(M, N, K, a.f32(), K, b.data<uint16_t>(), N, kernels::WeightLayout::KN,
                       nullptr, yp, N, 0);
  } else if (c.precision == Precision::BF16 && b.dtype() == DType::BF16) {
    Tensor ab = to_bf16(a);
    dnnl_gemm(*gemm_, ab.raw(), DType::BF16, b.raw(), DType::BF16, false, nullptr, yp, M, N, K);
  } else if (b.dtype() == DType::F32) {
    dnnl_gemm(*gemm_, a.raw(), DType::F32, b.raw(), DType::F32, false, nullptr, yp, M, N, K);
  } else {
    gemm_f32_w16(a.f32(), b.data<uint16_t>(), b.dtype() == DType::F16, false, nullptr, yp, M, N, K);
  }
  return y;
}

void cpu::destroy_gemm_plans(GemmPlans* p) {
  delete p;
}
cpu::GemmPlans* cpu::make_gemm_plans() {
  return new GemmPlans();
}

}  // namespace ovis::ops
