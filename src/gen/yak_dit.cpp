#include "gen/yak_dit.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"
#include "gen/rope_nd.hpp"
#include "gen/timestep.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {

constexpr float kNormEps = 1e-6f;  // DiT LayerNorms, non-affine (§9.2)
constexpr int kTimestepDim = 256;  // timestep_embedding width, hard-coded upstream (§7.6)
constexpr int kPositionAxes = 3;   // (t, row, col) (§7.3)
const std::string kPrefix = "visual_generator.backbone.";

}  // namespace

YakDiT YakDiT::load(WeightBinder& wb, const DitConfig& cfg) {
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
  d.cfg_ = cfg;
  d.hidden_ = cfg.hidden_size;
  d.heads_ = cfg.num_heads;
  d.head_dim_ = cfg.head_dim();
  d.mlp_hidden_ = cfg.mlp_hidden();
  const int64_t H = d.hidden_, M = d.mlp_hidden_, D = d.head_dim_;
  const std::string& p = kPrefix;

  d.img_in_ = gen::Linear::bind(wb, p + "img_in", H, cfg.in_channels);
  d.time_in_ =
      gen::MlpEmbedder::bind(wb, p + "time_in.in_layer", p + "time_in.out_layer", kTimestepDim, H);
  d.vector_in_ = gen::MlpEmbedder::bind(wb, p + "vector_in.in_layer", p + "vector_in.out_layer",
                                        cfg.vec_in_dim, H);
  d.txt_in_ = TokenRefiner::load(wb, p + "txt_in.", cfg);

  auto attn = [&](const std::string& q) {
    return Attn{gen::Linear::bind(wb, q + ".qkv", 3 * H, H),
                gen::Linear::bind(wb, q + ".proj", H, H), gen::QkNorm::bind(wb, q + ".norm", D)};
  };
  auto mlp = [&](const std::string& q) {
    return Mlp{gen::Linear::bind(wb, q + ".0", M, H), gen::Linear::bind(wb, q + ".2", H, M)};
  };
  for (int i = 0; i < cfg.depth; ++i) {
    const std::string q = p + "double_blocks." + std::to_string(i) + ".";
    DoubleBlock b;
    b.img_mod = gen::Linear::bind(wb, q + "img_mod.lin", 9 * H, H);
    b.txt_mod = gen::Linear::bind(wb, q + "txt_mod.lin", 6 * H, H);
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
    b.mod = gen::Linear::bind(wb, q + "modulation.lin", 3 * H, H);
    b.linear1 = gen::Linear::bind(wb, q + "linear1", 3 * H + M, H);
    b.linear2 = gen::Linear::bind(wb, q + "linear2", H, H + M);
    b.norm = gen::QkNorm::bind(wb, q + "norm", D);
    d.single_blocks_.push_back(std::move(b));
  }
  d.final_ada_ = gen::Linear::bind(wb, p + "final_layer.adaLN_modulation.1", 2 * H, H);
  d.final_linear_ = gen::Linear::bind(wb, p + "final_layer.linear", cfg.out_channels, H);
  return d;
}

YakDiT::Modulations YakDiT::modulations(const Tensor& vec) const {
  // Every adaLN projection reads SiLU(vec) only: one GEMV each per forward (M = 1, weight-bound).
  Tensor s = vec.clone();
  ops::silu_(s);
  Modulations m;
  for (const DoubleBlock& b : double_blocks_) {
    m.img.push_back(b.img_mod(s));
    m.txt.push_back(b.txt_mod(s));
  }
  for (const SingleBlock& b : single_blocks_) m.single.push_back(b.mod(s));
  m.final = final_ada_(s);
  return m;
}

Tensor YakDiT::mlp(const Mlp& m, const Tensor& x) const {
  Tensor h = m.fc1(x);
  ops::gelu_tanh_(h);
  return m.fc2(h);
}

// §7.9. Modulation chunks: img (shift, scale, gate) × {attn, mlp, self-attn}; txt × {attn, mlp}.
void YakDiT::double_block(const DoubleBlock& b, const float* im, const float* tm, Tensor& img,
                          Tensor& txt, const RopeTable& pe_txt, const RopeTable& pe_img) const {
  const int64_t H = hidden_, L = txt.dim(0), N = img.dim(0);
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  const float *s1 = im, *c1 = im + H, *g1 = im + 2 * H;
  const float *s2 = im + 3 * H, *c2 = im + 4 * H, *g2 = im + 5 * H;
  const float *s3 = im + 6 * H, *c3 = im + 7 * H, *g3 = im + 8 * H;
  const float *ts1 = tm, *tc1 = tm + H, *tg1 = tm + 2 * H;
  const float *ts2 = tm + 3 * H, *tc2 = tm + 4 * H, *tg2 = tm + 5 * H;

  Tensor self_out, joint;
  {
    const Tensor n = ops::layer_norm(img, nullptr, nullptr, kNormEps);
    // Hot spots: the joint attention over L + N' tokens and the self-attention over N' (at real
    // size ops::attention is most of the forward), then the qkv/proj/MLP GEMMs.
    gen::Qkv ia = gen::split_qkv(b.img_attn.qkv(ops::modulate(n, s1, c1)), 0, heads_, head_dim_,
                                 &b.img_attn.norm, &pe_img);
    {
      const gen::Qkv sa = gen::split_qkv(b.img_self_attn.qkv(ops::modulate(n, s3, c3)), 0, heads_,
                                         head_dim_, &b.img_self_attn.norm, &pe_img);
      self_out = ops::attention(sa.q, sa.k, sa.v, heads_, heads_, scale, false);
    }
    const Tensor m = ops::layer_norm(txt, nullptr, nullptr, kNormEps);
    gen::Qkv ta = gen::split_qkv(b.txt_attn.qkv(ops::modulate(m, ts1, tc1)), 0, heads_, head_dim_,
                                 &b.txt_attn.norm, &pe_txt);
    joint = ops::attention(ops::concat_rows({ta.q, ia.q}), ops::concat_rows({ta.k, ia.k}),
                           ops::concat_rows({ta.v, ia.v}), heads_, heads_, scale, false);
  }
  ops::gated_add_(img, b.img_attn.proj(joint.slice_rows(L, L + N)), g1);
  ops::gated_add_(img, b.img_self_attn.proj(self_out), g3);
  ops::gated_add_(
      img, mlp(b.img_mlp, ops::modulate(ops::layer_norm(img, nullptr, nullptr, kNormEps), s2, c2)),
      g2);
  ops::gated_add_(txt, b.txt_attn.proj(joint.slice_rows(0, L)), tg1);
  ops::gated_add_(
      txt,
      mlp(b.txt_mlp, ops::modulate(ops::layer_norm(txt, nullptr, nullptr, kNormEps), ts2, tc2)),
      tg2);
}

// §7.10: linear1 -> [qkv | mlp]; linear2 on cat(attn, GELU_tanh(mlp)); gated residual.
void YakDiT::single_block(const SingleBlock& b, const float* mod, Tensor& x,
                          const RopeTable& pe) const {
  const int64_t H = hidden_, qkv_width = 3 * H;
  const float *shift = mod, *scl = mod + H, *gate = mod + 2 * H;
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  // Hot spots: ops::attention over L + N' tokens, linear1 (H -> 3H + mlp) and linear2
  // (H + mlp -> H), and GELU over [L + N', mlp].
  const Tensor y =
      b.linear1(ops::modulate(ops::layer_norm(x, nullptr, nullptr, kNormEps), shift, scl));
  Tensor a;
  {
    const gen::Qkv qkv = gen::split_qkv(y, 0, heads_, head_dim_, &b.norm, &pe);
    a = ops::attention(qkv.q, qkv.k, qkv.v, heads_, heads_, scale, false);
  }
  Tensor act = ops::cols(y, qkv_width, qkv_width + mlp_hidden_);
  ops::gelu_tanh_(act);
  ops::gated_add_(x, b.linear2(ops::concat_cols({a, act})), gate);
}

DitText YakDiT::prepare_text(const Tensor& txt, DitTrace* trace) const {
  if (txt.ndim() != 2 || txt.dim(1) != cfg_.context_in_dim || txt.dim(0) < 1)
    fail("YakDiT: txt ", shape_str(txt.shape()), " does not match [L, ", cfg_.context_in_dim, "]");
  // §7.6.5: txt_fea, y = txt_in(txt); vec gets vector_in(y).
  TokenRefinerOutput refined = txt_in_.forward(txt);
  DitText text{refined.txt_fea, vector_in_(refined.cls_y)};
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
  const Tensor x_in = cond_img ? ops::concat_rows({img, *cond_img}) : img;
  const Tensor ids_img = cond_img ? ops::concat_rows({img_ids, *cond_ids}) : img_ids;
  const int64_t Ni = x_in.dim(0);

  Tensor x_img = img_in_(x_in);
  Tensor x_txt = text.txt_fea.clone();  // the blocks update the text stream in place
  // §7.6.3 / §9.1: the bf16 reference rounds t and 1000·t to bf16; the F32 goldens do not.
  const bool bf16 = ops::precision() == ops::Precision::BF16;
  Tensor vec = time_in_(timestep_embedding(t, kTimestepDim, bf16));
  if (trace) trace->time_in_out = vec.clone();
  ops::add_(vec, text.vector_in_out);
  if (trace) trace->vec = vec.clone();
  const Modulations mods = modulations(vec);
  // §7.8: positions over [txt; img(; cond)], text ids all zero.
  const RopeTable pe = rope_nd(ops::concat_rows({Tensor::zeros({L, kPositionAxes}), ids_img}),
                               cfg_.axes_dim, cfg_.theta);
  if (trace) trace->pe = rope_rotation_matrices(pe);
  const RopeTable pe_txt = pe.slice(0, L), pe_img = pe.slice(L, L + Ni);

  for (size_t i = 0; i < double_blocks_.size(); ++i) {
    double_block(double_blocks_[i], mods.img[i].f32(), mods.txt[i].f32(), x_img, x_txt, pe_txt,
                 pe_img);
    if (trace) {
      trace->double_img.push_back(x_img.clone());
      trace->double_txt.push_back(x_txt.clone());
    }
  }
  Tensor x = ops::concat_rows({x_txt, x_img});
  for (size_t i = 0; i < single_blocks_.size(); ++i) {
    single_block(single_blocks_[i], mods.single[i].f32(), x, pe);
    if (trace) trace->single_out.push_back(x.clone());
  }

  // §7.6.9 final layer: (shift, scale) = adaLN(vec); Linear((1 + scale)·LN(x) + shift).
  const float* shift = mods.final.f32();
  const float* scl = mods.final.f32() + H;
  Tensor out = final_linear_(ops::modulate(
      ops::layer_norm(x.slice_rows(L, L + Ni), nullptr, nullptr, kNormEps), shift, scl));
  if (trace) trace->final_layer_out = out.clone();
  // §7.6.10: with a conditioning image only the first N tokens are the velocity.
  return Ni == N ? out : out.slice_rows(0, N);
}

}  // namespace ovis
