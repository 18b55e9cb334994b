#include "gen/vae.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "gen/vae_tiling.hpp"
#include "nn/layers.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace vae_impl {

constexpr float kNormEps = 1e-6f;  // GroupNorm eps, spec §9.2
constexpr float kLogvarMin = -30.0f, kLogvarMax = 20.0f;

struct Resnet {  // diffusers ResnetBlock2D without time embedding, output scale 1
  nn::GroupNorm norm1, norm2;
  nn::Conv2d conv1, conv2;
  bool has_shortcut = false;
  nn::Conv2d shortcut;  // 1x1, present when in != out channels
};
struct Attention {  // single head over all C channels, spec §7.11
  nn::GroupNorm norm;
  nn::Linear q, k, v, o;  // Linear [C, C] + bias [C]
};
struct MidBlock {
  Resnet res0;
  Attention attn;
  Resnet res1;
};
struct Stage {  // DownEncoderBlock2D / UpDecoderBlock2D
  std::vector<Resnet> resnets;
  bool has_resample = false;
  nn::Conv2d resample;  // downsampler / upsampler 3x3 conv
};
struct Encoder {
  nn::Conv2d conv_in;
  std::vector<Stage> down;
  MidBlock mid;
  nn::GroupNorm norm_out;
  nn::Conv2d conv_out;
};
struct Decoder {
  nn::Conv2d conv_in;
  MidBlock mid;
  std::vector<Stage> up;
  nn::GroupNorm norm_out;
  nn::Conv2d conv_out;
};

}  // namespace vae_impl

struct Vae::Weights {
  VaeConfig cfg;
  ops::Context enc_ctx, dec_ctx;  // the encoder follows the precision; the decoder is fp32
  vae_impl::Encoder enc;
  vae_impl::Decoder dec;
  nn::Conv2d quant, post_quant;
};

namespace vae_impl {
namespace {

class Loader {
 public:
  Loader(WeightBinder& wb, const ops::Context& ctx, std::string prefix, int groups)
      : wb_(wb), c_(ctx), p_(std::move(prefix)), groups_(groups) {}

  nn::Conv2d conv(const std::string& name, int64_t out, int64_t in, int64_t k) {
    return nn::Conv2d::bind(wb_, c_, p_ + name, out, in, k);
  }
  nn::GroupNorm norm(const std::string& name, int64_t c) {
    return nn::GroupNorm::bind(wb_, c_, p_ + name, c, groups_, kNormEps);
  }
  Resnet resnet(const std::string& name, int64_t in, int64_t out) {
    Resnet r;
    r.norm1 = norm(name + ".norm1", in);
    r.conv1 = conv(name + ".conv1", out, in, 3);
    r.norm2 = norm(name + ".norm2", out);
    r.conv2 = conv(name + ".conv2", out, out, 3);
    r.has_shortcut = in != out;
    if (r.has_shortcut) r.shortcut = conv(name + ".conv_shortcut", out, in, 1);
    return r;
  }
  // Linear [C, C] under the diffusers name or its legacy spelling, as [C,C] or [C,C,1,1].
  nn::Linear attn_linear(const std::string& block, const char* name, const char* legacy,
                         int64_t c) {
    std::string base = p_ + block + "." + name;
    if (!wb_.has(base + ".weight") && wb_.has(p_ + block + "." + legacy + ".weight"))
      base = p_ + block + "." + legacy;
    Tensor w;
    try {
      w = wb_.get(base + ".weight", {c, c});
    } catch (const Error& linear_shape) {
      if (!wb_.has(base + ".weight")) throw;
      try {
        w = wb_.get(base + ".weight", {c, c, 1, 1}).reshape({c, c});
      } catch (const Error&) {
        fail(linear_shape.what(), " (or [", c, ", ", c, ", 1, 1])");
      }
    }
    const Tensor b = wb_.get(base + ".bias", {c});
    return nn::Linear::from(c_, w, &b);
  }
  Attention attention(const std::string& name, int64_t c) {
    Attention a;
    a.norm = norm(name + ".group_norm", c);
    a.q = attn_linear(name, "to_q", "query", c);
    a.k = attn_linear(name, "to_k", "key", c);
    a.v = attn_linear(name, "to_v", "value", c);
    a.o = attn_linear(name, "to_out.0", "proj_attn", c);
    return a;
  }
  MidBlock mid(const std::string& name, int64_t c) {
    return {resnet(name + ".resnets.0", c, c), attention(name + ".attentions.0", c),
            resnet(name + ".resnets.1", c, c)};
  }

 private:
  WeightBinder& wb_;
  ops::Context c_;
  std::string p_;
  int groups_;
};

// Forward pieces. Activations are taken by value where the caller can std::move them in, so
// they are freed as soon as they are dead (1024² × 128 ch f32 is 512 MB). Every 'same'
// convolution runs banded in the CPU backend (bounded temporaries, ops::conv2d).

// conv(silu(group_norm(x))), the GroupNorm+SiLU fused into the convolution's prologue. `sync`
// (tiled decode only) supplies the statistics, and may stop the tile (then the result is
// undefined).
Tensor norm_silu_conv(const ops::Context& c, const Tensor& x, const nn::GroupNorm& n,
                      const nn::Conv2d& conv, GroupNormSync* sync = nullptr) {
  const Tensor stats =
      sync ? sync->stats(c, x, n.groups, n.eps) : ops::group_norm_stats(c, x, n.groups, n.eps);
  if (sync && sync->stopped()) return Tensor();
  ops::ConvPrologue pro;
  pro.kind = ops::ConvPrologue::Kind::GroupNormSilu;
  pro.stats = &stats;
  pro.norm_w = &n.w;
  pro.norm_b = &n.b;
  return conv(c, x, pro);
}

bool stopped(const GroupNormSync* sync) {
  return sync && sync->stopped();
}

// Returns an undefined tensor once `sync` has stopped the tile (statistics collection).
Tensor resnet(const ops::Context& c, Tensor x, const Resnet& r, GroupNormSync* sync = nullptr) {
  Tensor skip = r.has_shortcut ? r.shortcut(c, x) : x;
  Tensor h = norm_silu_conv(c, x, r.norm1, r.conv1, sync);
  x = Tensor();
  if (stopped(sync)) return Tensor();
  h = norm_silu_conv(c, h, r.norm2, r.conv2, sync);
  if (stopped(sync)) return Tensor();
  ops::add_(c, h, skip);
  return h;
}

// GroupNorm -> tokens [HW, C] -> q, k, v -> softmax(q kᵀ/√C) v -> to_out -> + residual.
Tensor attention(const ops::Context& c, Tensor x, const Attention& a) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor tokens = ops::permute(c, a.norm(c, x).reshape({C, H * W}), {1, 0});
  Tensor q = a.q(c, tokens);
  Tensor k = a.k(c, tokens);
  Tensor v = a.v(c, tokens);
  tokens = Tensor();
  Tensor o = ops::attention(c, q, k, v, 1, 1, 1.0f / std::sqrt(float(C)), false);
  q = k = v = Tensor();
  o = a.o(c, o);
  Tensor y = ops::permute(c, o, {1, 0}).reshape({C, H, W});
  o = Tensor();
  ops::add_(c, y, x);
  return y;
}

Tensor mid_block(const ops::Context& c, Tensor x, const MidBlock& m) {
  x = resnet(c, std::move(x), m.res0);
  x = attention(c, std::move(x), m.attn);
  return resnet(c, std::move(x), m.res1);
}

// Downsample2D of the encoder: pad right/bottom by one, then 3x3 stride 2 without padding.
Tensor downsample(const ops::Context& c, const Tensor& x, const nn::Conv2d& conv) {
  ops::Conv2dParams p;
  p.stride = 2;
  p.pad_bottom = p.pad_right = 1;
  return conv(c, x, p);
}

// Upsample2D: nearest ×2 then 3x3 conv (pad 1), the upsample fused into the prologue.
Tensor upsample(const ops::Context& c, const Tensor& x, const nn::Conv2d& conv) {
  ops::ConvPrologue pro;
  pro.kind = ops::ConvPrologue::Kind::Upsample2x;
  return conv(c, x, pro);
}

}  // namespace
}  // namespace vae_impl

using namespace vae_impl;

Vae Vae::load(WeightBinder& wb, const ops::Context& ctx, const VaeConfig& cfg) {
  const std::vector<int>& ch = cfg.block_out_channels;
  if (ch.empty()) fail("config.json: vae_config.block_out_channels is empty");
  if (cfg.layers_per_block < 1) fail("config.json: vae_config.layers_per_block must be >= 1");
  if (cfg.norm_num_groups < 1) fail("config.json: vae_config.norm_num_groups must be >= 1");
  for (int c : ch)
    if (c <= 0 || c % cfg.norm_num_groups != 0)
      fail(
          "config.json: vae_config.block_out_channels must be positive multiples of "
          "norm_num_groups");
  const int64_t L = cfg.latent_channels, nb = int64_t(ch.size());
  auto w = std::make_shared<Weights>();
  w->cfg = cfg;
  w->enc_ctx = ctx;
  // spec §9.1: the reference decodes in fp32 (CUDA autocast) even when the rest runs in bf16.
  w->dec_ctx = ctx.with_precision(ops::Precision::F32);
  Loader ld(wb, w->enc_ctx, "visual_generator.vae.", cfg.norm_num_groups);
  Loader dl(wb, w->dec_ctx, "visual_generator.vae.", cfg.norm_num_groups);

  Encoder& e = w->enc;
  e.conv_in = ld.conv("encoder.conv_in", ch[0], cfg.in_channels, 3);
  int64_t prev = ch[0];
  for (int64_t b = 0; b < nb; ++b) {
    Stage s;
    const std::string name = "encoder.down_blocks." + std::to_string(b);
    for (int r = 0; r < cfg.layers_per_block; ++r) {
      s.resnets.push_back(ld.resnet(name + ".resnets." + std::to_string(r), prev, ch[b]));
      prev = ch[b];
    }
    s.has_resample = b + 1 < nb;
    if (s.has_resample) s.resample = ld.conv(name + ".downsamplers.0.conv", prev, prev, 3);
    e.down.push_back(std::move(s));
  }
  e.mid = ld.mid("encoder.mid_block", prev);
  e.norm_out = ld.norm("encoder.conv_norm_out", prev);
  e.conv_out = ld.conv("encoder.conv_out", 2 * L, prev, 3);  // double_z: mean and logvar
  w->quant = ld.conv("quant_conv", 2 * L, 2 * L, 1);
  w->post_quant = dl.conv("post_quant_conv", L, L, 1);

  Decoder& d = w->dec;
  prev = ch[nb - 1];
  d.conv_in = dl.conv("decoder.conv_in", prev, L, 3);
  d.mid = dl.mid("decoder.mid_block", prev);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t out = ch[nb - 1 - b];
    Stage s;
    const std::string name = "decoder.up_blocks." + std::to_string(b);
    for (int r = 0; r < cfg.layers_per_block + 1; ++r) {
      s.resnets.push_back(dl.resnet(name + ".resnets." + std::to_string(r), prev, out));
      prev = out;
    }
    s.has_resample = b + 1 < nb;
    if (s.has_resample) s.resample = dl.conv(name + ".upsamplers.0.conv", prev, prev, 3);
    d.up.push_back(std::move(s));
  }
  d.norm_out = dl.norm("decoder.conv_norm_out", prev);
  d.conv_out = dl.conv("decoder.conv_out", cfg.out_channels, prev, 3);
  return Vae(std::move(w));
}

const VaeConfig& Vae::config() const {
  return w_->cfg;
}

int64_t Vae::upscale_factor() const {
  return int64_t(1) << (w_->cfg.block_out_channels.size() - 1);
}

const ops::Context& Vae::decode_context() const {
  return w_->dec_ctx;
}

void Vae::check_latents(const Tensor& z, const char* who) const {
  if (z.ndim() != 3 || z.dim(0) != w_->cfg.latent_channels || z.dim(1) < 1 || z.dim(2) < 1)
    fail(who, ": latents must be [", w_->cfg.latent_channels, ", h, w], got ",
         shape_str(z.shape()));
}

Tensor Vae::decode_head(const Tensor& z) const {
  const ops::Context& c = w_->dec_ctx;
  const Decoder& d = w_->dec;
  const Tensor zf = z.dtype() == c.act_dtype() ? z : ops::cast(c, z, c.act_dtype());
  Tensor h = d.conv_in(c, w_->post_quant(c, zf));
  h = mid_block(c, std::move(h), d.mid);
  for (const Resnet& r : d.up[0].resnets) h = resnet(c, std::move(h), r);
  return h;
}

Tensor Vae::decode_tail(Tensor h, GroupNormSync* sync) const {
  const ops::Context& c = w_->dec_ctx;
  const Decoder& d = w_->dec;
  for (size_t b = 0; b < d.up.size(); ++b) {
    if (b > 0)
      for (const Resnet& r : d.up[b].resnets) {
        h = resnet(c, std::move(h), r, sync);
        if (stopped(sync)) return Tensor();
      }
    if (d.up[b].has_resample) h = upsample(c, h, d.up[b].resample);
  }
  return norm_silu_conv(c, h, d.norm_out, d.conv_out, sync);
}

int Vae::tail_group_norms() const {
  int n = 1;  // conv_norm_out
  for (size_t b = 1; b < w_->dec.up.size(); ++b) n += 2 * int(w_->dec.up[b].resnets.size());
  return n;
}

double Vae::tail_context() const {
  const Decoder& d = w_->dec;
  double reach = 0, scale = 1;
  for (size_t b = 0; b < d.up.size(); ++b) {
    if (b > 0) reach += 2.0 * double(d.up[b].resnets.size()) / scale;  // two 3x3 convs each
    if (d.up[b].has_resample) {
      scale *= 2;
      reach += 1.0 / scale;
    }
  }
  return reach + 1.0 / scale;  // conv_out
}

Tensor Vae::decode(const Tensor& z) const {
  check_latents(z, "Vae::decode");
  return decode_tail(decode_head(z));
}

Tensor Vae::decode_auto(const Tensor& z) const {
  check_latents(z, "Vae::decode_auto");
  if (z.dim(1) * z.dim(2) <= kAutoTileMaxLatentArea) return decode(z);
  // Large images: tiles with whole-image GroupNorm statistics, so the result equals decode() up
  // to rounding (see decode_tiled); needs overlap >= 2*ceil(tail_context()) + 1.
  const int overlap = std::max(16, 2 * int(std::ceil(tail_context())) + 1);
  return decode_tiled(z, 64, overlap, tail_group_norms());
}

Vae::Posterior Vae::encode(const Tensor& x_in) const {
  const VaeConfig& cfg = w_->cfg;
  const ops::Context& c = w_->enc_ctx;
  const int64_t f = upscale_factor();
  if (x_in.ndim() != 3 || x_in.dim(0) != cfg.in_channels || x_in.dim(1) < f || x_in.dim(2) < f ||
      x_in.dim(1) % f != 0 || x_in.dim(2) % f != 0)
    fail("Vae::encode: image must be [", cfg.in_channels, ", H, W] with H, W multiples of ", f,
         ", got ", shape_str(x_in.shape()));
  const Tensor x = ops::upload(c, x_in);
  const Encoder& e = w_->enc;
  Tensor h = e.conv_in(c, x);
  for (const Stage& s : e.down) {
    for (const Resnet& r : s.resnets) h = resnet(c, std::move(h), r);
    if (s.has_resample) h = downsample(c, h, s.resample);
  }
  h = mid_block(c, std::move(h), e.mid);
  h = norm_silu_conv(c, h, e.norm_out, e.conv_out);
  h = w_->quant(c, h);
  const int64_t L = cfg.latent_channels;
  Posterior post{h.slice_rows(0, L).clone(), h.slice_rows(L, 2 * L).clone()};
  ops::clamp_(c, post.logvar, kLogvarMin, kLogvarMax);
  return post;
}

}  // namespace ovis
