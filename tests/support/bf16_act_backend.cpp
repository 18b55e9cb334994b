#include "support/bf16_act_backend.hpp"

#include <cstring>

#include "core/error.hpp"

namespace ovis::test {

namespace {

using namespace ops;

// f32 view of a float tensor (a widened copy when it is 16-bit).
Tensor f32(const Tensor& t) {
  return t.dtype() == DType::F32 ? t : t.to_f32();
}
const Tensor* f32p(const Tensor* t, Tensor& keep) {
  if (!t) return nullptr;
  keep = f32(*t);
  return &keep;
}
// Writes f32 values into dst (any float dtype), rounding.
void write_back(Tensor& dst, const Tensor& src) {
  if (dst.dtype() == DType::F32) {
    if (dst.device_ptr() != src.device_ptr())
      std::memcpy(dst.mutable_raw(), src.raw(), src.nbytes());
    return;
  }
  const Tensor r = src.to_dtype(dst.dtype());
  std::memcpy(dst.mutable_raw(), r.raw(), r.nbytes());
}

class Bf16ActBackend final : public Backend {
 public:
  Bf16ActBackend() : cpu_(make_backend(Device::cpu())) {}

  Device device() const override { return Device::cpu(); }
  std::string name() const override { return "cpu with bf16 activations (test)"; }
  Allocator& allocator() override { return cpu_->allocator(); }
  DType act_dtype(Precision p) const override {
    return p == Precision::BF16 ? DType::BF16 : DType::F32;
  }
  int threads() const override { return cpu_->threads(); }
  void activate() override { cpu_->activate(); }

  LinearWeights prepare_linear(const Context& c, const Tensor& w, const Tensor* b,
                               bool sole_user) override {
    return cpu_->prepare_linear(in(c), w, b, sole_user);
  }
  ConvWeights prepare_conv(const Context& c, const Tensor& w, const Tensor* b) override {
    return cpu_->prepare_conv(in(c), w, b);
  }
  Tensor prepare_f32(const Tensor& w) override { return cpu_->prepare_f32(w); }
  Tensor prepare_stored(const Tensor& w) override { return cpu_->prepare_stored(w); }

  Tensor linear(const Context& c, const Tensor& x, const LinearWeights& w) override {
    return out(c, cpu_->linear(in(c), f32(x), w));
  }
  Tensor matmul(const Context& c, const Tensor& a, const Tensor& b) override {
    return out(c, cpu_->matmul(in(c), f32(a), b));
  }
  Tensor rms_norm(const Context& c, const Tensor& x, const Tensor* w, float eps) override {
    Tensor k;
    return out(c, cpu_->rms_norm(in(c), f32(x), f32p(w, k), eps));
  }
  Tensor layer_norm(const Context& c, const Tensor& x, const Tensor* w, const Tensor* b,
                    float eps) override {
    Tensor kw, kb;
    return out(c, cpu_->layer_norm(in(c), f32(x), f32p(w, kw), f32p(b, kb), eps));
  }
  Tensor group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                    float eps) override {
    return out(c, cpu_->group_norm(in(c), f32(x), groups, f32(w), f32(b), eps));
  }
  Tensor group_norm_stats(const Context& c, const Tensor& x, int groups, float eps) override {
    return cpu_->group_norm_stats(in(c), f32(x), groups, eps);
  }
  void group_moments_add_(const Context& c, Tensor& acc, const Tensor& x, int groups, int64_t y0,
                          int64_t y1, int64_t x0, int64_t x1) override {
    cpu_->group_moments_add_(in(c), acc, f32(x), groups, y0, y1, x0, x1);
  }
  Tensor group_norm_stats_from_moments(const Context& c, const Tensor& acc, float eps) override {
    return cpu_->group_norm_stats_from_moments(in(c), acc, eps);
  }

  void silu_(const Context& c, Tensor& x) override {
    inplace(x, [&](Tensor& t) { cpu_->silu_(in(c), t); });
  }
  void gelu_tanh_(const Context& c, Tensor& x) override {
    inplace(x, [&](Tensor& t) { cpu_->gelu_tanh_(in(c), t); });
  }
  Tensor swiglu(const Context& c, const Tensor& g, const Tensor& u) override {
    return out(c, cpu_->swiglu(in(c), f32(g), f32(u)));
  }
  void add_(const Context& c, Tensor& y, const Tensor& x) override {
    inplace(y, [&](Tensor& t) { cpu_->add_(in(c), t, f32(x)); });
  }
  void affine_(const Context& c, Tensor& y, float s, float b) override {
    inplace(y, [&](Tensor& t) { cpu_->affine_(in(c), t, s, b); });
  }
  void clamp_(const Context& c, Tensor& y, float lo, float hi) override {
    inplace(y, [&](Tensor& t) { cpu_->clamp_(in(c), t, lo, hi); });
  }
  Tensor modulate(const Context& c, const Tensor& x, const Tensor& shift,
                  const Tensor& scale) override {
    return out(c, cpu_->modulate(in(c), f32(x), f32(shift), f32(scale)));
  }
  void gated_add_(const Context& c, Tensor& y, const Tensor& x, const Tensor* gate) override {
    Tensor k;
    const Tensor* g = f32p(gate, k);
    inplace(y, [&](Tensor& t) { cpu_->gated_add_(in(c), t, f32(x), g); });
  }
  void softmax_(const Context& c, Tensor& x) override {
    inplace(x, [&](Tensor& t) { cpu_->softmax_(in(c), t); });
  }
  void round_bf16_(const Context& c, Tensor& x) override { cpu_->round_bf16_(in(c), x); }
  void copy_(const Context& c, Tensor& dst, const Tensor& src) override {
    cpu_->copy_(in(c), dst, src);
  }

  Tensor slice_cols(const Context& c, const Tensor& x, int64_t b, int64_t e) override {
    return cpu_->slice_cols(in(c), x, b, e);
  }
  Tensor concat_cols(const Context& c, const std::vector<Tensor>& p) override {
    return cpu_->concat_cols(in(c), p);
  }
  Tensor concat_rows(const Context& c, const std::vector<Tensor>& p) override {
    return cpu_->concat_rows(in(c), p);
  }
  Tensor embedding(const Context& c, const Tensor& t, const std::vector<int64_t>& ids) override {
    return out(c, cpu_->embedding(in(c), t, ids));
  }
  Tensor embedding(const Context& c, const Tensor& t, const Tensor& ids) override {
    return out(c, cpu_->embedding(in(c), t, ids));
  }
  Tensor argmax(const Context& c, const Tensor& x) override { return cpu_->argmax(in(c), x); }
  Tensor mean_rows(const Context& c, const Tensor& x) override {
    return out(c, cpu_->mean_rows(in(c), f32(x)));
  }
  Tensor permute(const Context& c, const Tensor& x, const std::vector<int>& p) override {
    return cpu_->permute(in(c), x, p);
  }
  Tensor crop(const Context& c, const Tensor& x, int64_t y0, int64_t y1, int64_t x0,
              int64_t x1) override {
    return same_dtype(x, cpu_->crop(in(c), f32(x), y0, y1, x0, x1));
  }
  void accumulate_tile_(const Context& c, Tensor& o, const Tensor& t, int64_t y0, int64_t x0,
                        const std::vector<float>& wy, const std::vector<float>& wx) override {
    inplace(o, [&](Tensor& f) { cpu_->accumulate_tile_(in(c), f, f32(t), y0, x0, wy, wx); });
  }
  Tensor upsample_nearest2x(const Context& c, const Tensor& x) override {
    return same_dtype(x, cpu_->upsample_nearest2x(in(c), f32(x)));
  }
  Tensor grid_positions(const Context& c, int64_t h, int64_t w, float t) override {
    return cpu_->grid_positions(in(c), h, w, t);
  }

  RopeTable rope_table(const Context& c, const Tensor& pos, const RopeFreqs& f) override {
    return cpu_->rope_table(in(c), pos, f);
  }
  RopeTable rope_table(const Context& c, int64_t s, int64_t L, const RopeFreqs& f) override {
    return cpu_->rope_table(in(c), s, L, f);
  }
  void rope_(const Context& c, Tensor& x, int heads, const RopeTable& t,
             RopeLayout layout) override {
    inplace(x, [&](Tensor& f) { cpu_->rope_(in(c), f, heads, t, layout); });
  }
  Tensor attention(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v, int hq,
                   int hk, float scale, bool causal) override {
    return out(c, cpu_->attention(in(c), f32(q), f32(k), f32(v), hq, hk, scale, causal));
  }
  RopeTable rope_table_at(const Context& c, const Tensor& pos, int64_t L,
                          const RopeFreqs& f) override {
    return cpu_->rope_table_at(in(c), pos, L, f);
  }
  void copy_rows_at_(const Context& c, Tensor& dst, const Tensor& src, const Tensor& pos) override {
    cpu_->copy_rows_at_(in(c), dst, src, pos);
  }
  Tensor attention_at(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                      const Tensor& pos, int hq, int hk, float scale) override {
    return out(c, cpu_->attention_at(in(c), f32(q), f32(k), f32(v), pos, hq, hk, scale));
  }
  Tensor conv2d(const Context& c, const Tensor& x, const ConvWeights& w, const Conv2dParams& p,
                const ConvPrologue& pro) override {
    ConvPrologue q = pro;
    Tensor kw, kb;
    q.norm_w = f32p(pro.norm_w, kw);
    q.norm_b = f32p(pro.norm_b, kb);
    return out(c, cpu_->conv2d(in(c), f32(x), w, p, q));
  }
  Tensor timestep_embedding(const Context& c, float t, int dim, float max_period) override {
    return out(c, cpu_->timestep_embedding(in(c), t, dim, max_period));
  }
  void guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v, Guidance g,
                          float s0, float s1, float dt, Tensor* guided) override {
    std::vector<Tensor> vf;
    for (const Tensor& t : v) vf.push_back(f32(t).clone());
    Tensor gf = guided ? Tensor::empty(guided->shape()) : Tensor();
    inplace(img, [&](Tensor& f) {
      cpu_->guided_euler_step_(in(c), f, vf, g, s0, s1, dt, guided ? &gf : nullptr);
    });
    if (guided) write_back(*guided, gf);
  }
  Tensor image_to_u8(const Context& c, const Tensor& x) override {
    return cpu_->image_to_u8(in(c), f32(x));
  }
  Tensor randn_torch_cuda(const Context& c, const Shape& s, uint64_t seed) override {
    return cpu_->randn_torch_cuda(in(c), s, seed);
  }

 private:
  // The inner CPU backend's context at the same precision.
  Context in(const Context& c) const { return Context{cpu_.get(), c.precision}; }
  // A new activation: rounded to bf16 in BF16 precision.
  static Tensor out(const Context& c, const Tensor& t) {
    return c.precision == Precision::BF16 && t.dtype() == DType::F32 ? t.to_dtype(DType::BF16) : t;
  }
  static Tensor same_dtype(const Tensor& like, const Tensor& t) {
    return like.dtype() == t.dtype() ? t : t.to_dtype(like.dtype());
  }
  // An in-place op on x (any float dtype): run in f32, write back rounded.
  template <class F>
  static void inplace(Tensor& x, F f) {
    if (x.dtype() == DType::F32) {
      f(x);
      return;
    }
    Tensor t = x.to_f32();
    f(t);
    write_back(x, t);
  }

  std::unique_ptr<Backend> cpu_;
};

}  // namespace

std::unique_ptr<ops::Backend> make_bf16_act_backend() {
  return std::make_unique<Bf16ActBackend>();
}

}  // namespace ovis::test
