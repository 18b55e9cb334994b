#include "gen/token_refiner.hpp"

#include <cmath>

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {
constexpr float kNormEps = 1e-6f;        // refiner norm1/norm2 (§9.2)
constexpr int64_t kRefinerMlpRatio = 4;  // SingleTokenRefiner's mlp_width_ratio default (§7.7)
}  // namespace

TokenRefiner TokenRefiner::load(WeightBinder& wb, const std::string& prefix, const DitConfig& cfg) {
  TokenRefiner r;
  r.hidden_ = cfg.hidden_size;
  r.heads_ = cfg.refiner_heads();
  if (r.heads_ <= 0 || r.hidden_ % r.heads_ != 0)
    fail("config.json: visual_generator_config.hidden_size ", r.hidden_,
         " is not divisible by the refiner's ", r.heads_, " heads (2 x num_heads)");
  r.head_dim_ = r.hidden_ / r.heads_;
  const int64_t H = r.hidden_, C = cfg.context_in_dim, M = kRefinerMlpRatio * H;
  r.input_embedder_ = gen::Linear::bind(wb, prefix + "input_embedder", H, C);
  r.c_embedder_ = gen::MlpEmbedder::bind(wb, prefix + "c_embedder.linear_1",
                                         prefix + "c_embedder.linear_2", C, H);
  r.cls_token_ = ops::weight_f32(wb.get(prefix + "cls_token", {1, 1, H})).reshape({1, H});
  for (int j = 0; j < cfg.refiner_depth; ++j) {
    const std::string p = prefix + "individual_token_refiner.blocks." + std::to_string(j) + ".";
    Block b;
    b.norm1_w = gen::bind_vector(wb, p + "norm1.weight", H);
    b.norm1_b = gen::bind_vector(wb, p + "norm1.bias", H);
    b.norm2_w = gen::bind_vector(wb, p + "norm2.weight", H);
    b.norm2_b = gen::bind_vector(wb, p + "norm2.bias", H);
    b.qkv = gen::Linear::bind(wb, p + "self_attn_qkv", 3 * H, H);
    b.proj = gen::Linear::bind(wb, p + "self_attn_proj", H, H);
    b.fc1 = gen::Linear::bind(wb, p + "mlp.fc1", M, H);
    b.fc2 = gen::Linear::bind(wb, p + "mlp.fc2", H, M);
    b.ada = gen::Linear::bind(wb, p + "adaLN_modulation.1", 2 * H, H);
    r.blocks_.push_back(std::move(b));
  }
  return r;
}

TokenRefinerOutput TokenRefiner::forward(const Tensor& txt) const {
  const int64_t L = txt.dim(0), H = hidden_;
  // c = TextProjection(mean over all L tokens of the raw condition); only gates come from it.
  Tensor c = c_embedder_(ops::mean_rows(txt));
  ops::silu_(c);
  // x = [CLS; input_embedder(txt)]
  Tensor x = ops::concat_rows({cls_token_, input_embedder_(txt)});
  const float scale = 1.0f / std::sqrt(float(head_dim_));
  for (const Block& b : blocks_) {
    const Tensor gates = b.ada(c);  // [1, 2H]: gate_msa, gate_mlp
    const float* g_msa = gates.f32();
    const float* g_mlp = gates.f32() + H;
    {
      const Tensor n = ops::layer_norm(x, &b.norm1_w, &b.norm1_b, kNormEps);
      const gen::Qkv a = gen::split_qkv(b.qkv(n), 0, heads_, head_dim_, nullptr, nullptr);
      const Tensor o = ops::attention(a.q, a.k, a.v, heads_, heads_, scale, false);
      ops::gated_add_(x, b.proj(o), g_msa);
    }
    Tensor h = b.fc1(ops::layer_norm(x, &b.norm2_w, &b.norm2_b, kNormEps));
    ops::silu_(h);
    ops::gated_add_(x, b.fc2(h), g_mlp);
  }
  return {x.slice_rows(1, L + 1), x.slice_rows(0, 1)};
}

}  // namespace ovis
