// 2-D convolution through oneDNN (blocked layouts chosen by the library; the weight reorder is
// cached per weight tensor so repeated calls, e.g. VAE tiles, pay it once).
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.hpp"
#include "ops/cpu/dnnl_util.hpp"
#include "ops/ops.hpp"

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

struct ConvPlan {
  dnnl::convolution_forward::primitive_desc pd;
  dnnl::convolution_forward prim;
};

struct CachedWeight {
  memory::desc md;
  memory mem;
  Tensor keep;  // plain source kept alive (the reorder reads it once)
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor* bias, const Conv2dParams& p) {
  OVIS_ASSERT(x.ndim() == 3 && w.ndim() == 4 && x.dim(0) == w.dim(1));
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const int64_t O = w.dim(0), KH = w.dim(2), KW = w.dim(3);
  const int64_t OH = (H + p.pad_top + p.pad_bottom - KH) / p.stride + 1;
  const int64_t OW = (W + p.pad_left + p.pad_right - KW) / p.stride + 1;
  const bool bf16 = precision() == Precision::BF16;
  const auto act_dt = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  ConvKey key{C,
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
              bias != nullptr};

  static std::mutex mu;
  static std::map<ConvKey, ConvPlan> plans;
  static std::map<std::pair<const void*, bool>, CachedWeight> weights;
  std::unique_lock<std::mutex> lock(mu);
  auto it = plans.find(key);
  if (it == plans.end()) {
    memory::desc src_md({1, C, H, W}, act_dt, memory::format_tag::any);
    memory::desc wei_md({O, C, KH, KW}, act_dt, memory::format_tag::any);
    memory::desc bias_md({O}, memory::data_type::f32, memory::format_tag::a);
    memory::desc dst_md({1, O, OH, OW}, memory::data_type::f32, memory::format_tag::any);
    memory::dims strides{p.stride, p.stride}, pad_l{p.pad_top, p.pad_left},
        pad_r{p.pad_bottom, p.pad_right};
    auto desc = bias ? dnnl::convolution_forward::desc(
                           dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                           src_md, wei_md, bias_md, dst_md, strides, pad_l, pad_r)
                     : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                       dnnl::algorithm::convolution_direct, src_md,
                                                       wei_md, dst_md, strides, pad_l, pad_r);
    dnnl::convolution_forward::primitive_desc pd(desc, dnnl_engine());
    it = plans.emplace(key, ConvPlan{pd, dnnl::convolution_forward(pd)}).first;
  }
  ConvPlan& plan = it->second;
  dnnl::stream& s = dnnl_stream();

  // Weights: reorder once into the primitive's layout and dtype.
  auto wkey = std::make_pair(w.raw(), bf16);
  auto wit = weights.find(wkey);
  if (wit == weights.end() || wit->second.md != plan.pd.weights_desc()) {
    Tensor plain =
        bf16 ? (w.dtype() == DType::BF16 ? w : w.to_f32().to_dtype(DType::BF16)) : weight_f32(w);
    memory src({{O, C, KH, KW}, act_dt, memory::format_tag::oihw}, dnnl_engine(), plain.raw());
    memory dst(plan.pd.weights_desc(), dnnl_engine());
    dnnl::reorder(src, dst).execute(s, src, dst);
    s.wait();
    weights[wkey] = CachedWeight{plan.pd.weights_desc(), dst, Tensor()};
    wit = weights.find(wkey);
  }
  memory wmem = wit->second.mem;
  lock.unlock();

  Tensor xin = bf16 ? x.to_dtype(DType::BF16) : x;
  memory x_plain({{1, C, H, W}, act_dt, memory::format_tag::nchw}, dnnl_engine(), xin.raw());
  memory x_mem = x_plain;
  if (plan.pd.src_desc() != x_plain.get_desc()) {
    x_mem = memory(plan.pd.src_desc(), dnnl_engine());
    dnnl::reorder(x_plain, x_mem).execute(s, x_plain, x_mem);
  }
  Tensor y = Tensor::empty({O, OH, OW});
  memory y_plain({{1, O, OH, OW}, memory::data_type::f32, memory::format_tag::nchw}, dnnl_engine(),
                 y.raw());
  memory y_mem = plan.pd.dst_desc() == y_plain.get_desc()
                     ? y_plain
                     : memory(plan.pd.dst_desc(), dnnl_engine());
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, x_mem}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, y_mem}};
  Tensor bias_f32;
  if (bias) {
    bias_f32 = weight_f32(*bias);
    args.emplace(DNNL_ARG_BIAS, memory({{O}, memory::data_type::f32, memory::format_tag::a},
                                       dnnl_engine(), bias_f32.raw()));
  }
  plan.prim.execute(s, args);
  if (y_mem != y_plain) dnnl::reorder(y_mem, y_plain).execute(s, y_mem, y_plain);
  s.wait();
  return y;
}

}  // namespace ovis::ops
