#include "llm/qwen3.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "nn/rope.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {

void check_config(const LlmConfig& c) {
  auto positive = [](int v, const char* field) {
    if (v <= 0) fail("config.json: llm_config.", field, " must be positive, got ", v);
  };
  positive(c.vocab_size, "vocab_size");
  positive(c.hidden_size, "hidden_size");
  positive(c.num_layers, "num_hidden_layers");
  positive(c.num_heads, "num_attention_heads");
  positive(c.num_kv_heads, "num_key_value_heads");
  positive(c.head_dim, "head_dim");
  positive(c.intermediate_size, "intermediate_size");
  if (c.num_heads % c.num_kv_heads != 0)
    fail("config.json: llm_config.num_attention_heads (", c.num_heads,
         ") is not a multiple of num_key_value_heads (", c.num_kv_heads, ")");
  if (c.head_dim % 2 != 0) fail("config.json: llm_config.head_dim must be even, got ", c.head_dim);
}

}  // namespace

Qwen3 Qwen3::load(WeightBinder& wb, const ops::Context& ctx, const LlmConfig& cfg) {
  check_config(cfg);
  Qwen3 m;
  m.ctx_ = ctx;
  m.cfg_ = cfg;
  const int64_t hidden = cfg.hidden_size, q_width = int64_t(cfg.num_heads) * cfg.head_dim,
                kv_width = int64_t(cfg.num_kv_heads) * cfg.head_dim, inter = cfg.intermediate_size,
                D = cfg.head_dim;
  const float eps = cfg.rms_norm_eps;
  const std::string p = "llm.model.";
  m.embed_tokens_ = nn::bind_stored(wb, ctx, p + "embed_tokens.weight", {cfg.vocab_size, hidden});
  m.final_norm_ = nn::RmsNorm::bind(wb, ctx, p + "norm.weight", hidden, eps);
  m.layers_.resize(cfg.num_layers);
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string lp = p + "layers." + std::to_string(i) + ".";
    Layer& L = m.layers_[i];
    L.input_norm = nn::RmsNorm::bind(wb, ctx, lp + "input_layernorm.weight", hidden, eps);
    L.post_norm = nn::RmsNorm::bind(wb, ctx, lp + "post_attention_layernorm.weight", hidden, eps);
    L.q_norm = nn::RmsNorm::bind(wb, ctx, lp + "self_attn.q_norm.weight", D, eps);
    L.k_norm = nn::RmsNorm::bind(wb, ctx, lp + "self_attn.k_norm.weight", D, eps);
    L.q_proj = nn::Linear::bind(wb, ctx, lp + "self_attn.q_proj", q_width, hidden, false);
    L.k_proj = nn::Linear::bind(wb, ctx, lp + "self_attn.k_proj", kv_width, hidden, false);
    L.v_proj = nn::Linear::bind(wb, ctx, lp + "self_attn.v_proj", kv_width, hidden, false);
    L.o_proj = nn::Linear::bind(wb, ctx, lp + "self_attn.o_proj", hidden, q_width, false);
    L.gate_proj = nn::Linear::bind(wb, ctx, lp + "mlp.gate_proj", inter, hidden, false);
    L.up_proj = nn::Linear::bind(wb, ctx, lp + "mlp.up_proj", inter, hidden, false);
    L.down_proj = nn::Linear::bind(wb, ctx, lp + "mlp.down_proj", hidden, inter, false);
  }
  // Spec §8.1: the head is tied to embed_tokens; transformers does not save the duplicate.
  const std::string head = "llm.lm_head";
  if (wb.has(head + ".weight") && !cfg.tie_word_embeddings) {
    m.lm_head_ = nn::Linear::bind(wb, ctx, head, cfg.vocab_size, hidden, false);
  } else {
    if (wb.has(head + ".weight")) wb.ignore(head + ".weight");
    m.lm_head_ = nn::Linear::from(ctx, m.embed_tokens_, nullptr);
  }
  m.rope_ = nn::rope_freqs_1d(cfg.rope_theta, int(D), ctx.precision == ops::Precision::BF16);
  return m;
}

Tensor Qwen3::embed(const std::vector<int64_t>& ids) const {
  return ops::embedding(ctx_, embed_tokens_, ids);
}

KvCache Qwen3::make_cache(int64_t max_tokens) const {
  return KvCache(ctx_, cfg_.num_layers, max_tokens, int64_t(cfg_.num_kv_heads) * cfg_.head_dim);
}

void Qwen3::run_layer(int index, Tensor& x, const ops::RopeTable& rope, KvCache* cache,
                      const Tensor* pos) const {
  const ops::Context& c = ctx_;
  const Layer& w = layers_[index];
  const int64_t L = x.dim(0), D = cfg_.head_dim;
  const int H = cfg_.num_heads, Hkv = cfg_.num_kv_heads;

  // Attention block. At decode q/k/v (and gate/up below) are GEMVs over one input: one grouped
  // op streams their weights in a single parallel section.
  const Tensor xn = w.input_norm(c, x);
  std::vector<Tensor> qkv = ops::linear_group(c, xn, {&w.q_proj.w, &w.k_proj.w, &w.v_proj.w});
  Tensor q = std::move(qkv[0]);
  Tensor k = std::move(qkv[1]);
  const Tensor v = std::move(qkv[2]);
  // Spec §6: q_norm/k_norm are RMSNorms over head_dim, per head, before RoPE.
  q = w.q_norm(c, q.reshape({L * H, D})).reshape({L, H * D});
  k = w.k_norm(c, k.reshape({L * Hkv, D})).reshape({L, Hkv * D});
  ops::rope_(c, q, H, rope, ops::RopeLayout::HalfSplit);
  ops::rope_(c, k, Hkv, rope, ops::RopeLayout::HalfSplit);
  const float scale = 1.0f / std::sqrt(float(D));
  // Long prompts: attention is O(L^2 * head_dim) per head (tiled); at ~1k tokens (one image
  // prompt) its FLOPs are ~8% of the layer GEMMs'.
  Tensor attn;
  if (cache && pos) {
    ops::copy_rows_at_(c, cache->key_storage(index), k, *pos);
    ops::copy_rows_at_(c, cache->value_storage(index), v, *pos);
    attn = ops::attention_at(c, q, cache->key_storage(index), cache->value_storage(index), *pos, H,
                             Hkv, scale);
  } else if (cache) {
    cache->write(index, k, v);
    const int64_t end = cache->size() + L;
    attn = ops::attention(c, q, cache->keys(index, end), cache->values(index, end), H, Hkv, scale,
                          /*causal=*/true);
  } else {
    attn = ops::attention(c, q, k, v, H, Hkv, scale, /*causal=*/true);
  }
  ops::add_(c, x, w.o_proj(c, attn));

  // SwiGLU MLP.
  const Tensor hn = w.post_norm(c, x);
  const std::vector<Tensor> gate_up = ops::linear_group(c, hn, {&w.gate_proj.w, &w.up_proj.w});
  const Tensor act = ops::swiglu(c, gate_up[0], gate_up[1]);
  ops::add_(c, x, w.down_proj(c, act));
}

void Qwen3::check_embeds(const Tensor& embeds) const {
  if (embeds.dtype() != ctx_.act_dtype() || embeds.ndim() != 2 ||
      embeds.dim(1) != cfg_.hidden_size || embeds.dim(0) < 1)
    fail("Qwen3: input embeddings must be ", dtype_name(ctx_.act_dtype()), " [L >= 1, ",
         cfg_.hidden_size, "], got ", dtype_name(embeds.dtype()), " ", shape_str(embeds.shape()));
}

void Qwen3::check_cache(const KvCache& cache) const {
  if (cache.layers() != cfg_.num_layers ||
      cache.kv_width() != int64_t(cfg_.num_kv_heads) * cfg_.head_dim)
    fail("Qwen3: KV cache was not made for this model (use Qwen3::make_cache)");
}

Tensor Qwen3::forward(const Tensor& embeds, KvCache& cache, LlmTrace* trace) const {
  check_embeds(embeds);
  const int64_t L = embeds.dim(0), start = cache.size();
  check_cache(cache);
  if (start + L > cache.capacity())
    fail("KV cache full: ", start, " + ", L, " tokens exceed its capacity of ", cache.capacity());
  const ops::RopeTable rope = ops::rope_table(ctx_, start, L, rope_);
  if (trace) trace->layer_out.clear();
  Tensor x = embeds.clone();
  for (int i = 0; i < cfg_.num_layers; ++i) {
    run_layer(i, x, rope, &cache);
    if (trace) trace->layer_out.push_back(x.clone());
  }
  cache.advance(L);
  Tensor out = final_norm_(ctx_, x);
  if (trace) trace->final_norm = out.clone();
  return out;
}

Tensor Qwen3::decode_step(const Tensor& token, const Tensor& pos, KvCache& cache) const {
  check_cache(cache);
  const ops::RopeTable rope = ops::rope_table_at(ctx_, pos, 1, rope_);
  Tensor x = ops::embedding(ctx_, embed_tokens_, token);
  for (int i = 0; i < cfg_.num_layers; ++i) run_layer(i, x, rope, &cache, &pos);
  return logits(final_norm_(ctx_, x));
}

Tensor Qwen3::logits(const Tensor& hidden) const {
  if (hidden.dtype() != ctx_.act_dtype() || hidden.dim(-1) != cfg_.hidden_size)
    fail("Qwen3::logits: hidden states must be [rows, ", cfg_.hidden_size, "], got ",
         shape_str(hidden.shape()));
  // Decode hot spot: the tied head streams the whole [vocab, hidden] table for every token
  // (151936 x 2048 bf16 = 622 MB, ~18% of Qwen3-1.7B's per-token weight traffic).
  return lm_head_(ctx_, hidden);
}

Tensor Qwen3::condition(const Tensor& embeds) const {
  check_embeds(embeds);
  const int64_t L = embeds.dim(0);
  const ops::RopeTable rope = ops::rope_table(ctx_, 0, L, rope_);
  Tensor x = embeds.clone();
  Tensor last_input;
  for (int i = 0; i < cfg_.num_layers; ++i) {
    if (i == cfg_.num_layers - 1) last_input = x.clone();
    run_layer(i, x, rope, nullptr);
  }
  // Spec §7.1: hidden_states[-1] (normed) first, then hidden_states[-2] (raw residual).
  return ops::concat_cols(ctx_, {final_norm_(ctx_, x), last_input});
}

}  // namespace ovis
