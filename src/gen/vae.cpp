#include "gen/vae.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "gen/vae_bands.hpp"
#include "gen/vae_tiling.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace vae_impl {

constexpr float kNormEps = 1e-6f;  // GroupNorm eps, spec §9.2
constexpr float kLogvarMin = -30.0f, kLogvarMax = 20.0f;

struct Conv {
  Tensor w, b;
};
struct Norm {
  Tensor w, b;
};
struct Resnet {  // diffusers ResnetBlock2D without time embedding, output scale 1
  Norm norm1, norm2;
  Conv conv1, conv2;
  bool has_shortcut = false;
  Conv shortcut;  // 1x1, present when in != out channels
};
struct Attention {  // single head over all C channels, spec §7.11
  Norm norm;
  Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;  // Linear [C, C] + bias [C]
};
struct MidBlock {
  Resnet res0;
  Attention attn;
  Resnet res1;
};
struct Stage {  // DownEncoderBlock2D / UpDecoderBlock2D
  std::vector<Resnet> resnets;
  bool has_resample = false;
  Conv resample;  // downsampler / upsampler 3x3 conv
};
struct Encoder {
  Conv conv_in;
  std::vector<Stage> down;
  MidBlock mid;
  Norm norm_out;
  Conv conv_out;
};
struct Decoder {
  Conv conv_in;
  MidBlock mid;
  std::vector<Stage> up;
  Norm norm_out;
  Conv conv_out;
};

}  // namespace vae_impl

struct Vae::Weights {
  VaeConfig cfg;
  vae_impl::Encoder enc;
  vae_impl::Decoder dec;
  vae_impl::Conv quant, post_quant;
};

namespace vae_impl {
namespace {

class Loader {
 public:
  Loader(WeightBinder& wb, std::string prefix) : wb_(wb), p_(std::move(prefix)) {}

  Conv conv(const std::string& name, int64_t out, int64_t in, int64_t k) {
    return {wb_.get(p_ + name + ".weight", {out, in, k, k}), wb_.get(p_ + name + ".bias", {out})};
  }
  Norm norm(const std::string& name, int64_t c) {
    return {wb_.get(p_ + name + ".weight", {c}), wb_.get(p_ + name + ".bias", {c})};
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
  std::pair<Tensor, Tensor> attn_linear(const std::string& block, const char* name,
                                        const char* legacy, int64_t c) {
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
    return {w, wb_.get(base + ".bias", {c})};
  }
  Attention attention(const std::string& name, int64_t c) {
    Attention a;
    a.norm = norm(name + ".group_norm", c);
    std::tie(a.q_w, a.q_b) = attn_linear(name, "to_q", "query", c);
    std::tie(a.k_w, a.k_b) = attn_linear(name, "to_k", "key", c);
    std::tie(a.v_w, a.v_b) = attn_linear(name, "to_v", "value", c);
    std::tie(a.o_w, a.o_b) = attn_linear(name, "to_out.0", "proj_attn", c);
    return a;
  }
  MidBlock mid(const std::string& name, int64_t c) {
    return {resnet(name + ".resnets.0", c, c), attention(name + ".attentions.0", c),
            resnet(name + ".resnets.1", c, c)};
  }

 private:
  WeightBinder& wb_;
  std::string p_;
};

// Forward pieces. Activations are taken by value where the caller can std::move them in, so
// they are freed as soon as they are dead (1024² × 128 ch f32 is 512 MB).

// Full-resolution convs go through vae_bands (bounded temporaries); results equal ops::conv2d.
Tensor conv(const Tensor& x, const Conv& c) {
  return vae_bands::conv(x, c.w, c.b);
}

// conv(silu(group_norm(x))). `sync` (tiled decode only) supplies the statistics, and may stop
// the tile (then the result is undefined).
Tensor norm_silu_conv(const Tensor& x, const Norm& n, const Conv& c, int groups,
                      GroupNormSync* sync = nullptr) {
  const vae_bands::GroupStats s =
      sync ? sync->stats(x, groups, kNormEps) : vae_bands::group_stats(x, groups, kNormEps);
  if (sync && sync->stopped()) return Tensor();
  return vae_bands::norm_silu_conv(x, s, n.w, n.b, c.w, c.b);
}

bool stopped(const GroupNormSync* sync) {
  return sync && sync->stopped();
}

// Returns an undefined tensor once `sync` has stopped the tile (statistics collection).
Tensor resnet(Tensor x, const Resnet& r, int groups, GroupNormSync* sync = nullptr) {
  Tensor skip = r.has_shortcut ? conv(x, r.shortcut) : x;
  Tensor h = norm_silu_conv(x, r.norm1, r.conv1, groups, sync);
  x = Tensor();
  if (stopped(sync)) return Tensor();
  h = norm_silu_conv(h, r.norm2, r.conv2, groups, sync);
  if (stopped(sync)) return Tensor();
  ops::add_(h, skip);
  return h;
}

// [R, C] -> [C, R] (both contiguous), blocked for cache friendliness.
Tensor transpose2d(const Tensor& x) {
  const int64_t R = x.dim(0), C = x.dim(1);
  constexpr int64_t B = 32;
  Tensor y = Tensor::empty({C, R});
  const float* xp = x.f32();
  float* yp = y.f32();
#pragma omp parallel for collapse(2) schedule(static) if (R * C > (1 << 15))
  for (int64_t r0 = 0; r0 < R; r0 += B)
    for (int64_t c0 = 0; c0 < C; c0 += B)
      for (int64_t r = r0; r < std::min(R, r0 + B); ++r)
        for (int64_t c = c0; c < std::min(C, c0 + B); ++c) yp[c * R + r] = xp[r * C + c];
  return y;
}

// GroupNorm -> tokens [HW, C] -> q, k, v -> softmax(q kᵀ/√C) v -> to_out -> + residual.
Tensor attention(Tensor x, const Attention& a, int groups) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor tokens =
      transpose2d(ops::group_norm(x, groups, a.norm.w, a.norm.b, kNormEps).reshape({C, H * W}));
  Tensor q = ops::linear(tokens, a.q_w, &a.q_b);
  Tensor k = ops::linear(tokens, a.k_w, &a.k_b);
  Tensor v = ops::linear(tokens, a.v_w, &a.v_b);
  tokens = Tensor();
  Tensor o = ops::attention(q, k, v, 1, 1, 1.0f / std::sqrt(float(C)), false);
  q = k = v = Tensor();
  o = ops::linear(o, a.o_w, &a.o_b);
  Tensor y = transpose2d(o).reshape({C, H, W});
  o = Tensor();
  ops::add_(y, x);
  return y;
}

Tensor mid_block(Tensor x, const MidBlock& m, int groups) {
  x = resnet(std::move(x), m.res0, groups);
  x = attention(std::move(x), m.attn, groups);
  return resnet(std::move(x), m.res1, groups);
}

// Downsample2D of the encoder: pad right/bottom by one, then 3x3 stride 2 without padding.
Tensor downsample(const Tensor& x, const Conv& c) {
  ops::Conv2dParams p;
  p.stride = 2;
  p.pad_bottom = p.pad_right = 1;
  return ops::conv2d(x, c.w, &c.b, p);
}

// Upsample2D: nearest ×2 then 3x3 conv (pad 1).
Tensor upsample(const Tensor& x, const Conv& c) {
  return vae_bands::upsample_conv(x, c.w, c.b);
}

}  // namespace
}  // namespace vae_impl

using namespace vae_impl;

Vae Vae::load(WeightBinder& wb, const VaeConfig& cfg) {
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
  Loader ld(wb, "visual_generator.vae.");

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
  w->post_quant = ld.conv("post_quant_conv", L, L, 1);

  Decoder& d = w->dec;
  prev = ch[nb - 1];
  d.conv_in = ld.conv("decoder.conv_in", prev, L, 3);
  d.mid = ld.mid("decoder.mid_block", prev);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t out = ch[nb - 1 - b];
    Stage s;
    const std::string name = "decoder.up_blocks." + std::to_string(b);
    for (int r = 0; r < cfg.layers_per_block + 1; ++r) {
      s.resnets.push_back(ld.resnet(name + ".resnets." + std::to_string(r), prev, out));
      prev = out;
    }
    s.has_resample = b + 1 < nb;
    if (s.has_resample) s.resample = ld.conv(name + ".upsamplers.0.conv", prev, prev, 3);
    d.up.push_back(std::move(s));
  }
  d.norm_out = ld.norm("decoder.conv_norm_out", prev);
  d.conv_out = ld.conv("decoder.conv_out", cfg.out_channels, prev, 3);
  return Vae(std::move(w));
}

const VaeConfig& Vae::config() const {
  return w_->cfg;
}

int64_t Vae::upscale_factor() const {
  return int64_t(1) << (w_->cfg.block_out_channels.size() - 1);
}

void Vae::check_latents(const Tensor& z, const char* who) const {
  if (z.ndim() != 3 || z.dim(0) != w_->cfg.latent_channels || z.dim(1) < 1 || z.dim(2) < 1 ||
      z.dtype() != DType::F32)
    fail(who, ": latents must be float32 [", w_->cfg.latent_channels, ", h, w], got ",
         dtype_name(z.dtype()), " ", shape_str(z.shape()));
}

Tensor Vae::decode_head(const Tensor& z) const {
  const Decoder& d = w_->dec;
  const int g = w_->cfg.norm_num_groups;
  Tensor h = conv(conv(z, w_->post_quant), d.conv_in);
  h = mid_block(std::move(h), d.mid, g);
  for (const Resnet& r : d.up[0].resnets) h = resnet(std::move(h), r, g);
  return h;
}

Tensor Vae::decode_tail(Tensor h, GroupNormSync* sync) const {
  const Decoder& d = w_->dec;
  const int g = w_->cfg.norm_num_groups;
  for (size_t b = 0; b < d.up.size(); ++b) {
    if (b > 0)
      for (const Resnet& r : d.up[b].resnets) {
        h = resnet(std::move(h), r, g, sync);
        if (stopped(sync)) return Tensor();
      }
    if (d.up[b].has_resample) h = upsample(h, d.up[b].resample);
  }
  return norm_silu_conv(h, d.norm_out, d.conv_out, g, sync);
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

Vae::Posterior Vae::encode(const Tensor& x) const {
  const VaeConfig& cfg = w_->cfg;
  const int64_t f = upscale_factor();
  if (x.ndim() != 3 || x.dim(0) != cfg.in_channels || x.dtype() != DType::F32 || x.dim(1) < f ||
      x.dim(2) < f || x.dim(1) % f != 0 || x.dim(2) % f != 0)
    fail("Vae::encode: image must be float32 [", cfg.in_channels, ", H, W] with H, W multiples of ",
         f, ", got ", dtype_name(x.dtype()), " ", shape_str(x.shape()));
  const Encoder& e = w_->enc;
  const int g = cfg.norm_num_groups;
  Tensor h = conv(x, e.conv_in);
  for (const Stage& s : e.down) {
    for (const Resnet& r : s.resnets) h = resnet(std::move(h), r, g);
    if (s.has_resample) h = downsample(h, s.resample);
  }
  h = mid_block(std::move(h), e.mid, g);
  h = norm_silu_conv(h, e.norm_out, e.conv_out, g);
  h = conv(h, w_->quant);
  const int64_t L = cfg.latent_channels;
  Posterior post{h.slice_rows(0, L).clone(), h.slice_rows(L, 2 * L).clone()};
  float* lv = post.logvar.f32();
  for (int64_t i = 0; i < post.logvar.numel(); ++i)
    lv[i] = std::clamp(lv[i], kLogvarMin, kLogvarMax);
  return post;
}

Tensor image_to_u8(const Tensor& x) {
  if (x.ndim() != 3 || x.dtype() != DType::F32)
    fail("image_to_u8: expected float32 [C, H, W], got ", dtype_name(x.dtype()), " ",
         shape_str(x.shape()));
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor out = Tensor::empty({H, W, C}, DType::U8);
  const float* xp = x.f32();
  uint8_t* op = out.data<uint8_t>();
#pragma omp parallel for schedule(static) if (H * W * C > (1 << 15))
  for (int64_t y = 0; y < H; ++y)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < W; ++i) {
        // byte() truncates toward zero; the value is in [0, 255] after the clamp (spec §7.11).
        // NaN (a broken decode) maps to 0 rather than an undefined cast.
        const float v = (std::clamp(xp[(c * H + y) * W + i], -1.0f, 1.0f) + 1.0f) * 127.5f;
        op[(y * W + i) * C + c] = v >= 0.0f ? uint8_t(v) : uint8_t(0);
      }
  return out;
}

}  // namespace ovis
