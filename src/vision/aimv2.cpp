#include "vision/aimv2.hpp"

#include <cmath>

#include "core/error.hpp"
#include "ops/ops.hpp"
#include "vision/merge_order.hpp"
#include "vision/pos_embed.hpp"

namespace ovis {

namespace {

constexpr double kRopeTheta = 10000.0;  // VisionRotaryEmbedding default (spec §4.4)

const Tensor* opt(const Tensor& t) {
  return t.defined() ? &t : nullptr;
}

}  // namespace

AimV2 AimV2::load(WeightBinder& wb, const VisionConfig& cfg, const std::string& prefix) {
  AimV2 m;
  m.cfg_ = cfg;
  const int64_t D = cfg.hidden_size, I = cfg.intermediate_size, C = cfg.num_channels,
                P = cfg.patch_size, side = cfg.pos_grid();
  const std::string pre = prefix + "preprocessor.";
  m.patch_w_ = wb.get(pre + "patchifier.proj.weight", {D, C, P, P}).reshape({D, C * P * P});
  m.patch_b_ = wb.get(pre + "patchifier.proj.bias", {D});
  m.patch_norm_ = wb.get(pre + "patchifier.norm.weight", {D});
  m.pos_embed_ = wb.get(pre + "pos_embed", {1, side * side, D});
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string b = prefix + "trunk.blocks." + std::to_string(i) + ".";
    Block k;
    k.norm_1 = wb.get(b + "norm_1.weight", {D});
    k.qkv_w = wb.get(b + "attn.qkv.weight", {3 * D, D});
    if (cfg.qkv_bias) k.qkv_b = wb.get(b + "attn.qkv.bias", {3 * D});
    k.proj_w = wb.get(b + "attn.proj.weight", {D, D});
    k.norm_2 = wb.get(b + "norm_2.weight", {D});
    k.fc1_w = wb.get(b + "mlp.fc1.weight", {I, D});
    k.fc2_w = wb.get(b + "mlp.fc2.weight", {D, I});
    k.fc3_w = wb.get(b + "mlp.fc3.weight", {I, D});
    if (cfg.use_bias) {
      k.proj_b = wb.get(b + "attn.proj.bias", {D});
      k.fc1_b = wb.get(b + "mlp.fc1.bias", {I});
      k.fc2_b = wb.get(b + "mlp.fc2.bias", {D});
      k.fc3_b = wb.get(b + "mlp.fc3.bias", {I});
    }
    m.blocks_.push_back(std::move(k));
  }
  // Only hidden_states[-1] feeds the visual head; the normed last_hidden_state is discarded (§4.4).
  wb.ignore(prefix + "trunk.post_trunk_norm.weight");
  return m;
}

Tensor AimV2::patch_embed(const Tensor& pixel_values) const {
  const Tensor y = ops::linear(pixel_values, patch_w_, &patch_b_);
  return ops::rms_norm(y, &patch_norm_, cfg_.rms_norm_eps);
}

Tensor AimV2::pos_embed(int grid_h, int grid_w) const {
  return interpolate_pos_embed(pos_embed_, cfg_.pos_grid(), grid_h, grid_w, cfg_.hidden_stride);
}

void AimV2::rope_tables(int grid_h, int grid_w, Tensor* cos, Tensor* sin) const {
  // VisionRotaryEmbedding(head_dim / 2): head_dim / 4 frequencies 1 / theta^(2j / (head_dim/2)),
  // in float32. Angle columns [0, head_dim/4) come from the patch row, the next head_dim/4 from
  // the patch column; the rotation is half-split over the full head_dim (flash-attn
  // non-interleaved), which is ops::rope_ with tables of width head_dim / 2.
  const int half = cfg_.head_dim() / 2, nf = half / 2;
  std::vector<float> inv_freq(static_cast<size_t>(nf));
  for (int j = 0; j < nf; ++j)
    inv_freq[size_t(j)] = 1.0f / std::pow(float(kRopeTheta), float(2 * j) / float(half));
  const std::vector<PatchPos> pos = merge_order_positions(grid_h, grid_w, cfg_.hidden_stride);
  const int64_t N = int64_t(pos.size());
  *cos = Tensor::empty({N, half});
  *sin = Tensor::empty({N, half});
  float* c = cos->f32();
  float* s = sin->f32();
  for (int64_t n = 0; n < N; ++n) {
    for (int j = 0; j < nf; ++j) {
      const float ar = float(pos[size_t(n)].row) * inv_freq[size_t(j)];
      const float ac = float(pos[size_t(n)].col) * inv_freq[size_t(j)];
      c[n * half + j] = std::cos(ar);
      s[n * half + j] = std::sin(ar);
      c[n * half + nf + j] = std::cos(ac);
      s[n * half + nf + j] = std::sin(ac);
    }
  }
}

Tensor AimV2::trunk(const Tensor& x_in, int grid_h, int grid_w,
                    std::vector<Tensor>* layer_out) const {
  const int64_t D = cfg_.hidden_size, N = int64_t(grid_h) * grid_w;
  OVIS_ASSERT(x_in.dtype() == DType::F32 && x_in.ndim() == 2 && x_in.dim(0) == N &&
              x_in.dim(1) == D);
  const int H = cfg_.num_heads;
  const float eps = cfg_.rms_norm_eps;
  const float scale = 1.0f / std::sqrt(float(cfg_.head_dim()));
  Tensor cos, sin;
  if (!cfg_.disable_rope) rope_tables(grid_h, grid_w, &cos, &sin);
  Tensor x = x_in.clone();
  for (const Block& b : blocks_) {
    {
      // qkv columns are [3][heads][head_dim] (§4.4). One image = one attention segment.
      const Tensor qkv = ops::linear(ops::rms_norm(x, &b.norm_1, eps), b.qkv_w, opt(b.qkv_b));
      Tensor q = ops::cols(qkv, 0, D), k = ops::cols(qkv, D, 2 * D),
             v = ops::cols(qkv, 2 * D, 3 * D);
      if (!cfg_.disable_rope) {
        ops::rope_(q, H, cos, sin, ops::RopeLayout::HalfSplit);
        ops::rope_(k, H, cos, sin, ops::RopeLayout::HalfSplit);
      }
      const Tensor a = ops::attention(q, k, v, H, H, scale, /*causal=*/false);
      ops::add_(x, ops::linear(a, b.proj_w, opt(b.proj_b)));
    }
    {
      const Tensor h = ops::rms_norm(x, &b.norm_2, eps);
      const Tensor g =
          ops::swiglu(ops::linear(h, b.fc1_w, opt(b.fc1_b)), ops::linear(h, b.fc3_w, opt(b.fc3_b)));
      ops::add_(x, ops::linear(g, b.fc2_w, opt(b.fc2_b)));
    }
    if (layer_out) layer_out->push_back(x.clone());
  }
  return x;
}

Tensor AimV2::forward(const Tensor& pixel_values, int grid_h, int grid_w,
                      VisionTrace* trace) const {
  const int64_t N = int64_t(grid_h) * grid_w;
  const int64_t K = int64_t(cfg_.num_channels) * cfg_.patch_size * cfg_.patch_size;
  if (pixel_values.dtype() != DType::F32 || pixel_values.ndim() != 2 || pixel_values.dim(0) != N ||
      pixel_values.dim(1) != K)
    fail("vision: pixel_values ", shape_str(pixel_values.shape()), " ",
         dtype_name(pixel_values.dtype()), " does not match the ", grid_h, "x", grid_w,
         " patch grid (expected F32 [", N, ", ", K, "])");
  Tensor x = patch_embed(pixel_values);
  ops::add_(x, pos_embed(grid_h, grid_w));
  if (trace) {
    trace->patch_embed_plus_pos = x;  // trunk() does not modify its input
    trace->layer_out.clear();
  }
  return trunk(x, grid_h, grid_w, trace ? &trace->layer_out : nullptr);
}

}  // namespace ovis
