#include "vision/aimv2.hpp"

#include <cmath>

#include "core/error.hpp"
#include "nn/rope.hpp"
#include "ops/ops.hpp"
#include "vision/merge_order.hpp"
#include "vision/pos_embed.hpp"

namespace ovis {

namespace {

constexpr double kRopeTheta = 10000.0;  // VisionRotaryEmbedding default (spec §4.4)

}  // namespace

AimV2 AimV2::load(WeightBinder& wb, const ops::Context& ctx, const VisionConfig& cfg,
                  const std::string& prefix) {
  AimV2 m;
  m.ctx_ = ctx;
  m.cfg_ = cfg;
  const int64_t D = cfg.hidden_size, I = cfg.intermediate_size, C = cfg.num_channels,
                P = cfg.patch_size, side = cfg.pos_grid();
  const float eps = cfg.rms_norm_eps;
  const std::string pre = prefix + "preprocessor.";
  const Tensor patch_w =
      wb.get(pre + "patchifier.proj.weight", {D, C, P, P}).reshape({D, C * P * P});
  const Tensor patch_b = wb.get(pre + "patchifier.proj.bias", {D});
  m.patch_ = nn::Linear::from(ctx, patch_w, &patch_b);
  m.patch_norm_ = nn::RmsNorm::bind(wb, ctx, pre + "patchifier.norm.weight", D, eps);
  m.pos_embed_host_ = wb.get(pre + "pos_embed", {1, side * side, D});
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string b = prefix + "trunk.blocks." + std::to_string(i) + ".";
    Block k;
    k.norm_1 = nn::RmsNorm::bind(wb, ctx, b + "norm_1.weight", D, eps);
    k.qkv = nn::Linear::bind(wb, ctx, b + "attn.qkv", 3 * D, D, cfg.qkv_bias);
    k.proj = nn::Linear::bind(wb, ctx, b + "attn.proj", D, D, cfg.use_bias);
    k.norm_2 = nn::RmsNorm::bind(wb, ctx, b + "norm_2.weight", D, eps);
    k.fc1 = nn::Linear::bind(wb, ctx, b + "mlp.fc1", I, D, cfg.use_bias);
    k.fc2 = nn::Linear::bind(wb, ctx, b + "mlp.fc2", D, I, cfg.use_bias);
    k.fc3 = nn::Linear::bind(wb, ctx, b + "mlp.fc3", I, D, cfg.use_bias);
    m.blocks_.push_back(std::move(k));
  }
  // Only hidden_states[-1] feeds the visual head; the normed last_hidden_state is discarded (§4.4).
  wb.ignore(prefix + "trunk.post_trunk_norm.weight");
  m.rope_ = nn::rope_freqs_2d(kRopeTheta, cfg.head_dim());
  return m;
}

Tensor AimV2::patch_embed(const Tensor& pixel_values) const {
  return patch_norm_(ctx_, patch_(ctx_, pixel_values));
}

Tensor AimV2::pos_embed(int grid_h, int grid_w) const {
  return ops::upload(ctx_, interpolate_pos_embed(pos_embed_host_, cfg_.pos_grid(), grid_h, grid_w,
                                                 cfg_.hidden_stride));
}

ops::RopeTable AimV2::rope_tables(int grid_h, int grid_w) const {
  // Angle columns [0, head_dim/4) come from the patch row, the next head_dim/4 from the patch
  // column; the rotation is half-split over the full head_dim (flash-attn non-interleaved).
  return ops::rope_table(
      ctx_,
      ops::upload(ctx_, merge_order_position_table(grid_h, grid_w, cfg_.hidden_stride),
                  /*keep_dtype=*/true),
      rope_);
}

Tensor AimV2::trunk(const Tensor& x_in, int grid_h, int grid_w,
                    std::vector<Tensor>* layer_out) const {
  const ops::Context& c = ctx_;
  const int64_t D = cfg_.hidden_size, N = int64_t(grid_h) * grid_w;
  OVIS_ASSERT(x_in.ndim() == 2 && x_in.dim(0) == N && x_in.dim(1) == D);
  const int H = cfg_.num_heads;
  const float scale = 1.0f / std::sqrt(float(cfg_.head_dim()));
  ops::RopeTable rope;
  if (!cfg_.disable_rope) rope = rope_tables(grid_h, grid_w);
  Tensor x = x_in.clone();
  for (const Block& b : blocks_) {
    {
      // qkv columns are [3][heads][head_dim] (§4.4). One image = one attention segment.
      const Tensor qkv = b.qkv(c, b.norm_1(c, x));
      Tensor q = ops::slice_cols(c, qkv, 0, D), k = ops::slice_cols(c, qkv, D, 2 * D),
             v = ops::slice_cols(c, qkv, 2 * D, 3 * D);
      if (!cfg_.disable_rope) {
        ops::rope_(c, q, H, rope, ops::RopeLayout::HalfSplit);
        ops::rope_(c, k, H, rope, ops::RopeLayout::HalfSplit);
      }
      const Tensor a = ops::attention(c, q, k, v, H, H, scale, /*causal=*/false);
      ops::add_(c, x, b.proj(c, a));
    }
    {
      const Tensor h = b.norm_2(c, x);
      const Tensor g = ops::swiglu(c, b.fc1(c, h), b.fc3(c, h));
      ops::add_(c, x, b.fc2(c, g));
    }
    if (layer_out) layer_out->push_back(x.clone());
  }
  return x;
}

Tensor AimV2::forward(const Tensor& pixel_values, int grid_h, int grid_w,
                      VisionTrace* trace) const {
  const int64_t N = int64_t(grid_h) * grid_w;
  const int64_t K = int64_t(cfg_.num_channels) * cfg_.patch_size * cfg_.patch_size;
  if (pixel_values.ndim() != 2 || pixel_values.dim(0) != N || pixel_values.dim(1) != K)
    fail("vision: pixel_values ", shape_str(pixel_values.shape()), " does not match the ", grid_h,
         "x", grid_w, " patch grid (expected [", N, ", ", K, "])");
  Tensor x = patch_embed(ops::upload(ctx_, pixel_values));
  ops::add_(ctx_, x, pos_embed(grid_h, grid_w));
  if (trace) {
    trace->patch_embed_plus_pos = x;  // trunk() does not modify its input
    trace->layer_out.clear();
  }
  return trunk(x, grid_h, grid_w, trace ? &trace->layer_out : nullptr);
}

}  // namespace ovis
