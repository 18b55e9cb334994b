// 2-D convolution through oneDNN: blocked layouts chosen by the library. Weights are reordered
// into the primitive's layout when the layer is bound (for the binding context's precision) and
// kept in the ConvWeights; a call at another precision or with a primitive that wants another
// layout adds that form to the same weight once. Primitives are cached per problem shape in the
// backend (bounded LRU).
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/dnnl_util.hpp"
#include "ops/cpu/plan_cache.hpp"

namespace ovis::ops {

namespace {

using cpu::dnnl_engine;
using cpu::dnnl_stream;
using dnnl::memory;

struct ConvKey {
  int64_t c, h, w, o, kh, kw;
  int stride, pt, pl, pb, pr;
  bool bf16, bias;
  bool operator<(const ConvKey& x) const {
    return std::tie(c, h, w, o, kh, kw, stride, pt, pl, pb, pr, bf16, bias) <
           std::tie(x.c, x.h, x.w, x.o, x.kh, x.kw, x.stride, x.pt, x.pl, x.pb, x.pr, x.bf16,
                    x.bias);
  }
};

// The weight in the layouts and dtypes primitives asked for.
struct PreparedConv final : PreparedWeight {
  struct Form {
    memory::desc md;
    bool rounded;  // f32 values rounded to bf16 (BF16 precision emulated in f32)
    memory mem;
  };
  std::mutex mu;
  std::vector<Form> forms;
  Tensor b_f32;
};

// oneDNN runs bf16 convolutions on AVX-512 CPUs (natively with AVX512_BF16); elsewhere BF16
// precision is emulated: the same bf16-rounded inputs and weights, convolved in f32.
bool native_bf16_conv() {
  static const bool ok = __builtin_cpu_supports("avx512bw");
  return ok;
}

memory::data_type act_dt(bool bf16) {
  return bf16 ? memory::data_type::bf16 : memory::data_type::f32;
}

dnnl::convolution_forward::primitive_desc make_pd(const ConvKey& k) {
  const auto dt = act_dt(k.bf16);
  const int64_t OH = (k.h + k.pt + k.pb - k.kh) / k.stride + 1;
  const int64_t OW = (k.w + k.pl + k.pr - k.kw) / k.stride + 1;
  memory::desc src_md({1, k.c, k.h, k.w}, dt, memory::format_tag::any);
  memory::desc wei_md({k.o, k.c, k.kh, k.kw}, dt, memory::format_tag::any);
  memory::desc bias_md({k.o}, memory::data_type::f32, memory::format_tag::a);
  memory::desc dst_md({1, k.o, OH, OW}, memory::data_type::f32, memory::format_tag::any);
  memory::dims strides{k.stride, k.stride}, pad_l{k.pt, k.pl}, pad_r{k.pb, k.pr};
  auto desc = k.bias ? dnnl::convolution_forward::desc(
                           dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                           src_md, wei_md, bias_md, dst_md, strides, pad_l, pad_r)
                     : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                       dnnl::algorithm::convolution_direct, src_md,
                                                       wei_md, dst_md, strides, pad_l, pad_r);
  return dnnl::convolution_forward::primitive_desc(desc, dnnl_engine());
}

// The weight in layout `md` (created on first request); `rounded`: f32 values rounded to bf16.
memory weight_form(PreparedConv& pc, const Tensor& w, const memory::desc& md, bool bf16,
                   bool rounded) {
  std::lock_guard<std::mutex> lock(pc.mu);
  for (auto& f : pc.forms)
    if (f.md == md && f.rounded == rounded) return f.mem;
  const int64_t O = w.dim(0), C = w.dim(1), KH = w.dim(2), KW = w.dim(3);
  const Tensor w32 = w.dtype() == DType::F32 ? w : w.to_f32();
  const Tensor plain = bf16      ? (w.dtype() == DType::BF16 ? w : w32.to_dtype(DType::BF16))
                       : rounded ? w32.to_dtype(DType::BF16).to_f32()
                                 : w32;
  memory src({{O, C, KH, KW}, act_dt(bf16), memory::format_tag::oihw}, dnnl_engine(),
             const_cast<void*>(plain.raw()));
  memory dst(md, dnnl_engine());
  dnnl::stream& s = dnnl_stream();
  dnnl::reorder(src, dst).execute(s, src, dst);
  s.wait();
  pc.forms.push_back({md, rounded, dst});
  return dst;
}

}  // namespace

struct ConvPlan {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
};

struct cpu::ConvPlans {
  // A tiled VAE decode at 2048² uses a few hundred distinct (band, tile) shapes.
  PlanCache<ConvKey, ConvPlan> plans{512};

  ConvPlan get(const ConvKey& key) {
    return plans.get(key, [](const ConvKey& k) {
      const auto pd = make_pd(k);
      return ConvPlan{pd, dnnl::convolution_forward(pd)};
    });
  }
};

cpu::ConvPlans* cpu::make_conv_plans() {
  return new ConvPlans();
}
void cpu::destroy_conv_plans(ConvPlans* p) {
  delete p;
}

ConvWeights cpu::CpuBackend::prepare_conv(const Context&, const Tensor& w, const Tensor* b) {
  ConvWeights cw;
  cw.w = w;
  auto pc = std::make_shared<PreparedConv>();
  if (b) cw.b = pc->b_f32 = prepare_f32(*b);
  // The oneDNN layout of the weight is made on first use (weight_form), once, and kept with the
  // model: a process that only answers questions never convolves, and the reordered copies of the
  // VAE would otherwise stay resident for nothing (ask with a q4_k GGUF: 3.30 -> 2.88 GB peak RSS).
  cw.prepared = std::move(pc);
  return cw;
}

Tensor cpu::CpuBackend::conv2d_plain(const Context& c, const Tensor& x, const ConvWeights& cw,
                                     const Conv2dParams& p) {
  const Tensor& w = cw.w;
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const int64_t O = w.dim(0), KH = w.dim(2), KW = w.dim(3);
  const int64_t OH = (H + p.pad_top + p.pad_bottom - KH) / p.stride + 1;
  const int64_t OW = (W + p.pad_left + p.pad_right - KW) / p.stride + 1;
  const bool bf16 = c.precision == Precision::BF16 && native_bf16_conv();
  const bool emulated = c.precision == Precision::BF16 && !bf16;
  const ConvKey key{C,
                    H,
                    W,
                    O,
                    KH,
                    KW,
                    p.stride,
                    p.pad_top,
                    p.pad_left,
                    p.pad_bottom,
                    p.pad_right,
                    bf16,
                    cw.b.defined()};
  const ConvPlan plan = conv_->get(key);
  const auto& pd = plan.pd;
  auto* pc = static_cast<PreparedConv*>(cw.prepared.get());
  OVIS_ASSERT(pc);
  const memory wmem = weight_form(*pc, w, pd.weights_desc(), bf16, emulated);
  dnnl::stream& s = dnnl_stream();

  const Tensor xin = bf16       ? x.to_dtype(DType::BF16)
                     : emulated ? x.to_dtype(DType::BF16).to_f32()
                                : x;
  memory x_plain({{1, C, H, W}, act_dt(bf16), memory::format_tag::nchw}, dnnl_engine(),
                 const_cast<void*>(xin.raw()));
  memory x_mem = x_plain;
  if (pd.src_desc() != x_plain.get_desc()) {
    x_mem = memory(pd.src_desc(), dnnl_engine());
    dnnl::reorder(x_plain, x_mem).execute(s, x_plain, x_mem);
  }
  Tensor y = Tensor::empty({O, OH, OW});
  memory y_plain({{1, O, OH, OW}, memory::data_type::f32, memory::format_tag::nchw}, dnnl_engine(),
                 y.mutable_raw());
  memory y_mem =
      pd.dst_desc() == y_plain.get_desc() ? y_plain : memory(pd.dst_desc(), dnnl_engine());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, y_mem}};
  if (cw.b.defined())
    args.emplace(DNNL_ARG_BIAS, memory({{O}, memory::data_type::f32, memory::format_tag::a},
                                       dnnl_engine(), const_cast<void*>(cw.b.raw())));
  plan.prim.execute(s, args);
  if (y_mem != y_plain) dnnl::reorder(y_mem, y_plain).execute(s, y_mem, y_plain);
  s.wait();
  return y;
}

}  // namespace ovis::ops
