#include "gen/token_refiner.hpp"

#include <cmath>

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {
constexpr float kNormEps = 1e-6f;        // refiner norm1/norm2 (§9.2)
constexpr int64_t kRefinerMlpRatio = 4;  // SingleTokenRefiner's mlp_width_ratio default (§7.7)
}  // namespace

TokenRefiner TokenRefiner::load(WeightBinder& wb, const ops::Context& ctx,
                                const std::string& prefix, const DitConfig& cfg) {
  TokenRefiner r;
  r.ctx_ = ctx;
  r.hidden_ = cfg.hidden_size;
  r.heads_ = cfg.refiner_heads();
  if (r.heads_ <= 0 || r.hidden_ % r.heads_ != 0)
    fail("config.json: visual_generator_config.hidden_size ", r.hidden_,
         " is not divisible by the refiner's ", r.heads_, " heads (2 x num_heads)");
  r.head_dim_ = r.hidden_ / r.heads_;
  const int64_t H = r.hidden_, C = cfg.context_in_dim, M = kRefinerMlpRatio * H;
  r.input_embedder_ = nn::Linear::bind(wb, ctx, prefix + "input_embedder", H, C);
  r.c_embedder_ = gen::MlpEmbedder::bind(wb, ctx, prefix + "c_embedder.linear_1",
                                         prefix + "c_embedder.linear_2", C, H);
  r.cls_token_ = nn::bind_f32(wb, ctx, prefix + "cls_token", {1, 1, H}).reshape({1, H});
  for (int j = 0; j < cfg.refiner_depth; ++j) {
    const std::string p = prefix + "individual_token_refiner.blocks." + std::to_string(j) + ".";
    Block b;
    b.norm1 = nn::LayerNorm::bind(wb, ctx, p + "norm1", H, kNormEps);
    b.norm2 = nn::LayerNorm::bind(wb, ctx, p + "norm2", H, kNormEps);
    b.qkv = nn::Linear::bind(wb, ctx, p + "self_attn_qkv", 3 * H, H);
    b.proj = nn::Linear::bind(wb, ctx, p + "self_attn_proj", H, H);
    b.fc1 = nn::Linear::bind(wb, ctx, p + "mlp.fc1", M, H);
    b.fc2 = nn::Linear::bind(wb, ctx, p + "mlp.fc2", H, M);
    b.ada = nn::Linear::bind(wb, ctx, p + "adaLN_modulation.1", 2 * H, H);
    r.blocks_.push_back(std::move(b));
  }
  return r;
}

TokenRefinerOutput TokenRefiner::forward(const Tensor& txt) const {
  const ops::Context& c = ctx_;
  const int64_t L = txt.dim(0), H = hidden_;
  // c = TextProjection(mean over all L tokens of the raw condition); only gates come from it.
  Tensor cond = c_embedder_(c, ops::mean_rows(c, txt));
  ops::silu_(c, cond);
  // x = [CLS; input_embedder(txt)]
  Tensor x =
      ops::concat_rows(c, {ops::cast(c, cls_token_, c.act_dtype()), input_embedder_(c, txt)});
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  for (const Block& b : blocks_) {
    const Tensor gates = b.ada(c, cond);  // [1, 2H]: gate_msa, gate_mlp
    const Tensor g_msa = gen::chunk(gates, 0, H), g_mlp = gen::chunk(gates, 1, H);
    {
      const gen::Qkv a =
          gen::split_qkv(c, b.qkv(c, b.norm1(c, x)), 0, heads_, head_dim_, nullptr, nullptr);
      const Tensor o = ops::attention(c, a.q, a.k, a.v, heads_, heads_, scale, false);
      ops::gated_add_(c, x, b.proj(c, o), &g_msa);
    }
    Tensor h = b.fc1(c, b.norm2(c, x));
    ops::silu_(c, h);
    ops::gated_add_(c, x, b.fc2(c, h), &g_mlp);
  }
  return {x.slice_rows(1, L + 1), x.slice_rows(0, 1)};
}

}  // namespace ovis
