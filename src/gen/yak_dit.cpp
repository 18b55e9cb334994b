#include "gen/yak_dit.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"
#include "gen/timestep.hpp"
#include "nn/rope.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {

constexpr float kNormEps = 1e-6f;  // DiT LayerNorms, non-affine (§9.2)
constexpr int kTimestepDim = 256;  // timestep_embedding width, hard-coded upstream (§7.6)
constexpr int kPositionAxes = 3;   // (t, row, col) (§7.3)
const std::string kPrefix = "visual_generator.backbone.";

}  // namespace

YakDiT YakDiT::load(WeightBinder& wb, const ops::Context& ctx, const DitConfig& cfg) {
  const char* where = "config.json: visual_generator_config.";
  if (cfg.hidden_size <= 0 || cfg.num_heads <= 0 || cfg.hidden_size % cfg.num_heads != 0)
    fail(where, "hidden_size ", cfg.hidden_size, " is not divisible by num_heads ", cfg.num_heads);
  if (cfg.head_dim() % 2 != 0) fail(where, "head_dim ", cfg.head_dim(), " must be even");
  if (cfg.vec_in_dim != cfg.hidden_size)
    fail(where, "vec_in_dim ", cfg.vec_in_dim, " must equal hidden_size ", cfg.hidden_size,
         " (vector_in reads the refiner's CLS token)");
  if (cfg.guidance_embed)
    fail(where, "guidance_embed = true is not supported (Ovis-U1 uses false)");
  if (int(cfg.axes_dim.size()) != kPositionAxes)
    fail(where, "axes_dim must have ", kPositionAxes, " entries");

  YakDiT d;
  d.ctx_ = ctx;
  d.cfg_ = cfg;
  d.hidden_ = cfg.hidden_size;
  d.heads_ = cfg.num_heads;
  d.head_dim_ = cfg.head_dim();
  d.mlp_hidden_ = cfg.mlp_hidden();
  const int64_t H = d.hidden_, M = d.mlp_hidden_, D = d.head_dim_;
  const std::string& p = kPrefix;

  d.img_in_ = nn::Linear::bind(wb, ctx, p + "img_in", H, cfg.in_channels);
  d.time_in_ = gen::MlpEmbedder::bind(wb, ctx, p + "time_in.in_layer", p + "time_in.out_layer",
                                      kTimestepDim, H);
  d.vector_in_ = gen::MlpEmbedder::bind(wb, ctx, p + "vector_in.in_layer",
                                        p + "vector_in.out_layer", cfg.vec_in_dim, H);
  d.txt_in_ = TokenRefiner::load(wb, ctx, p + "txt_in.", cfg);

  auto attn = [&](const std::string& q) {
    return Attn{nn::Linear::bind(wb, ctx, q + ".qkv", 3 * H, H),
                nn::Linear::bind(wb, ctx, q + ".proj", H, H),
                gen::QkNorm::bind(wb, ctx, q + ".norm", D)};
  };
  auto mlp = [&](const std::string& q) {
    return Mlp{nn::Linear::bind(wb, ctx, q + ".0", M, H),
               nn::Linear::bind(wb, ctx, q + ".2", H, M)};
  };
  for (int i = 0; i < cfg.depth; ++i) {
    const std::string q = p + "double_blocks." + std::to_string(i) + ".";
    DoubleBlock b;
    b.img_mod = nn::Linear::bind(wb, ctx, q + "img_mod.lin", 9 * H, H);
    b.txt_mod = nn::Linear::bind(wb, ctx, q + "txt_mod.lin", 6 * H, H);
    b.img_attn = attn(q + "img_attn");
    b.img_self_attn = attn(q + "img_self_attn");
    b.txt_attn = attn(q + "txt_attn");
    b.img_mlp = mlp(q + "img_mlp");
    b.txt_mlp = mlp(q + "txt_mlp");
    d.double_blocks_.push_back(std::move(b));
  }
  for (int i = 0; i < cfg.depth_single_blocks; ++i) {
    const std::string q = p + "single_blocks." + std::to_string(i) + ".";
    SingleBlock b;
    b.mod = nn::Linear::bind(wb, ctx, q + "modulation.lin", 3 * H, H);
    b.linear1 = nn::Linear::bind(wb, ctx, q + "linear1", 3 * H + M, H);
    b.linear2 = nn::Linear::bind(wb, ctx, q + "linear2", H, H + M);
    b.norm = gen::QkNorm::bind(wb, ctx, q + "norm", D);
    d.single_blocks_.push_back(std::move(b));
  }
  d.final_ada_ = nn::Linear::bind(wb, ctx, p + "final_layer.adaLN_modulation.1", 2 * H, H);
  d.final_linear_ = nn::Linear::bind(wb, ctx, p + "final_layer.linear", cfg.out_channels, H);
  d.norm_ = nn::LayerNorm::plain(kNormEps);
  d.rope_ = nn::rope_freqs_nd(cfg.axes_dim, cfg.theta);
  return d;
}

YakDiT::Modulations YakDiT::modulations(const Tensor& vec) const {
  // Every adaLN projection reads SiLU(vec) only: one GEMV each per forward (M = 1, weight-bound).
  const ops::Context& c = ctx_;
  Tensor s = vec.clone();
  ops::silu_(c, s);
  Modulations m;
  for (const DoubleBlock& b : double_blocks_) {
    m.img.push_back(b.img_mod(c, s));
    m.txt.push_back(b.txt_mod(c, s));
  }
  for (const SingleBlock& b : single_blocks_) m.single.push_back(b.mod(c, s));
  m.final = final_ada_(c, s);
  return m;
}

Tensor YakDiT::mlp(const Mlp& m, const Tensor& x) const {
  Tensor h = m.fc1(ctx_, x);
  ops::gelu_tanh_(ctx_, h);
  return m.fc2(ctx_, h);
}

// §7.9. Modulation chunks: img (shift, scale, gate) × {attn, mlp, self-attn}; txt × {attn, mlp}.
void YakDiT::double_block(const DoubleBlock& b, const Tensor& im, const Tensor& tm, Tensor& img,
                          Tensor& txt, const ops::RopeTable& pe_txt,
                          const ops::RopeTable& pe_img) const {
  const ops::Context& c = ctx_;
  const int64_t H = hidden_, L = txt.dim(0), N = img.dim(0);
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  auto mi = [&](int k) { return gen::chunk(im, k, H); };
  auto mt = [&](int k) { return gen::chunk(tm, k, H); };

  Tensor self_out, joint;
  {
    const Tensor n = norm_(c, img);
    // Hot spots: the joint attention over L + N' tokens and the self-attention over N' (at real
    // size ops::attention is most of the forward), then the qkv/proj/MLP GEMMs.
    gen::Qkv ia = gen::split_qkv(c, b.img_attn.qkv(c, ops::modulate(c, n, mi(0), mi(1))), 0, heads_,
                                 head_dim_, &b.img_attn.norm, &pe_img);
    {
      const gen::Qkv sa =
          gen::split_qkv(c, b.img_self_attn.qkv(c, ops::modulate(c, n, mi(6), mi(7))), 0, heads_,
                         head_dim_, &b.img_self_attn.norm, &pe_img);
      self_out = ops::attention(c, sa.q, sa.k, sa.v, heads_, heads_, scale, false);
    }
    const Tensor m = norm_(c, txt);
    gen::Qkv ta = gen::split_qkv(c, b.txt_attn.qkv(c, ops::modulate(c, m, mt(0), mt(1))), 0, heads_,
                                 head_dim_, &b.txt_attn.norm, &pe_txt);
    joint = ops::attention(c, ops::concat_rows(c, {ta.q, ia.q}), ops::concat_rows(c, {ta.k, ia.k}),
                           ops::concat_rows(c, {ta.v, ia.v}), heads_, heads_, scale, false);
  }
  const Tensor g1 = mi(2), g2 = mi(5), g3 = mi(8), tg1 = mt(2), tg2 = mt(5);
  ops::gated_add_(c, img, b.img_attn.proj(c, joint.slice_rows(L, L + N)), &g1);
  ops::gated_add_(c, img, b.img_self_attn.proj(c, self_out), &g3);
  ops::gated_add_(c, img, mlp(b.img_mlp, ops::modulate(c, norm_(c, img), mi(3), mi(4))), &g2);
  ops::gated_add_(c, txt, b.txt_attn.proj(c, joint.slice_rows(0, L)), &tg1);
  ops::gated_add_(c, txt, mlp(b.txt_mlp, ops::modulate(c, norm_(c, txt), mt(3), mt(4))), &tg2);
}

// §7.10: linear1 -> [qkv | mlp]; linear2 on cat(attn, GELU_tanh(mlp)); gated residual.
void YakDiT::single_block(const SingleBlock& b, const Tensor& mod, Tensor& x,
                          const ops::RopeTable& pe) const {
  const ops::Context& c = ctx_;
  const int64_t H = hidden_, qkv_width = 3 * H;
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  // Hot spots: ops::attention over L + N' tokens, linear1 (H -> 3H + mlp) and linear2
  // (H + mlp -> H), and GELU over [L + N', mlp].
  const Tensor y =
      b.linear1(c, ops::modulate(c, norm_(c, x), gen::chunk(mod, 0, H), gen::chunk(mod, 1, H)));
  Tensor a;
  {
    const gen::Qkv qkv = gen::split_qkv(c, y, 0, heads_, head_dim_, &b.norm, &pe);
    a = ops::attention(c, qkv.q, qkv.k, qkv.v, heads_, heads_, scale, false);
  }
  Tensor act = ops::slice_cols(c, y, qkv_width, qkv_width + mlp_hidden_);
  ops::gelu_tanh_(c, act);
  const Tensor gate = gen::chunk(mod, 2, H);
  ops::gated_add_(c, x, b.linear2(c, ops::concat_cols(c, {a, act})), &gate);
}

DitText YakDiT::prepare_text(const Tensor& txt, DitTrace* trace) const {
  if (txt.ndim() != 2 || txt.dim(1) != cfg_.context_in_dim || txt.dim(0) < 1)
    fail("YakDiT: txt ", shape_str(txt.shape()), " does not match [L, ", cfg_.context_in_dim, "]");
  // §7.6.5: txt_fea, y = txt_in(txt); vec gets vector_in(y).
  TokenRefinerOutput refined = txt_in_.forward(txt);
  DitText text{refined.txt_fea, vector_in_(ctx_, refined.cls_y)};
  if (trace) {
    trace->txt_fea = text.txt_fea.clone();
    trace->cls_y = refined.cls_y.clone();
    trace->vector_in_out = text.vector_in_out.clone();
  }
  return text;
}

Tensor YakDiT::forward(const Tensor& img, const Tensor& img_ids, const Tensor& txt, float t,
                       const Tensor* cond_img, const Tensor* cond_ids, DitTrace* trace) const {
  return forward(img, img_ids, prepare_text(txt, trace), t, cond_img, cond_ids, trace);
}

Tensor YakDiT::forward(const Tensor& img, const Tensor& img_ids, const DitText& text, float t,
                       const Tensor* cond_img, const Tensor* cond_ids, DitTrace* trace) const {
  const ops::Context& c = ctx_;
  const int64_t N = img.dim(0), L = text.txt_fea.dim(0), H = hidden_;
  if (img.ndim() != 2 || img.dim(1) != cfg_.in_channels || img_ids.ndim() != 2 ||
      img_ids.dim(0) != N || img_ids.dim(1) != kPositionAxes)
    fail("YakDiT: img ", shape_str(img.shape()), " / img_ids ", shape_str(img_ids.shape()),
         " do not match [N, ", cfg_.in_channels, "] / [N, ", kPositionAxes, "]");
  OVIS_ASSERT(text.txt_fea.ndim() == 2 && text.txt_fea.dim(1) == H &&
              text.vector_in_out.numel() == H);
  if ((cond_img == nullptr) != (cond_ids == nullptr))
    fail("YakDiT: cond_img and cond_ids must be given together");
  if (cond_img &&
      (cond_img->ndim() != 2 || cond_img->dim(1) != cfg_.in_channels || cond_ids->ndim() != 2 ||
       cond_ids->dim(0) != cond_img->dim(0) || cond_ids->dim(1) != kPositionAxes))
    fail("YakDiT: cond_img ", shape_str(cond_img->shape()), " / cond_ids ",
         shape_str(cond_ids->shape()), " do not match [N2, ", cfg_.in_channels, "] / [N2, ",
         kPositionAxes, "]");

  // §7.6.1: the conditioning image is appended to the image tokens.
  const Tensor x_in = cond_img ? ops::concat_rows(c, {img, *cond_img}) : img;
  const Tensor ids_img = cond_img ? ops::concat_rows(c, {img_ids, *cond_ids}) : img_ids;
  const int64_t Ni = x_in.dim(0);

  Tensor x_img = img_in_(c, x_in);
  Tensor x_txt = text.txt_fea.clone();  // the blocks update the text stream in place
  // §7.6.3 / §9.1: the bf16 reference rounds t and 1000·t to bf16; the F32 goldens do not.
  Tensor vec = time_in_(c, timestep_embedding(c, t, kTimestepDim));
  if (trace) trace->time_in_out = vec.clone();
  ops::add_(c, vec, text.vector_in_out);
  if (trace) trace->vec = vec.clone();
  const Modulations mods = modulations(vec);
  // §7.8: positions over [txt; img(; cond)], text ids all zero.
  const ops::RopeTable pe = ops::rope_table(
      c, ops::concat_rows(c, {ops::zeros(c, {L, kPositionAxes}, DType::F32), ids_img}), rope_);
  if (trace) trace->pe = pe;
  const ops::RopeTable pe_txt = pe.slice(0, L), pe_img = pe.slice(L, L + Ni);

  for (size_t i = 0; i < double_blocks_.size(); ++i) {
    double_block(double_blocks_[i], mods.img[i], mods.txt[i], x_img, x_txt, pe_txt, pe_img);
    if (trace) {
      trace->double_img.push_back(x_img.clone());
      trace->double_txt.push_back(x_txt.clone());
    }
  }
  Tensor x = ops::concat_rows(c, {x_txt, x_img});
  for (size_t i = 0; i < single_blocks_.size(); ++i) {
    single_block(single_blocks_[i], mods.single[i], x, pe);
    if (trace) trace->single_out.push_back(x.clone());
  }

  // §7.6.9 final layer: (shift, scale) = adaLN(vec); Linear((1 + scale)·LN(x) + shift).
  Tensor out =
      final_linear_(c, ops::modulate(c, norm_(c, x.slice_rows(L, L + Ni)),
                                     gen::chunk(mods.final, 0, H), gen::chunk(mods.final, 1, H)));
  if (trace) trace->final_layer_out = out.clone();
  // §7.6.10: with a conditioning image only the first N tokens are the velocity.
  return Ni == N ? out : out.slice_rows(0, N);
}

}  // namespace ovis
