#include "llm/qwen3.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"
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

Qwen3 Qwen3::load(WeightBinder& wb, const LlmConfig& cfg) {
  check_config(cfg);
  Qwen3 m;
  m.cfg_ = cfg;
  const int64_t hidden = cfg.hidden_size, q_width = int64_t(cfg.num_heads) * cfg.head_dim,
                kv_width = int64_t(cfg.num_kv_heads) * cfg.head_dim, inter = cfg.intermediate_size,
                D = cfg.head_dim;
  const std::string p = "llm.model.";
  m.embed_tokens_ = wb.get(p + "embed_tokens.weight", {cfg.vocab_size, hidden});
  m.final_norm_ = ops::weight_f32(wb.get(p + "norm.weight", {hidden}));
  m.layers_.resize(cfg.num_layers);
  for (int i = 0; i < cfg.num_layers; ++i) {
    const std::string lp = p + "layers." + std::to_string(i) + ".";
    Layer& L = m.layers_[i];
    L.input_norm = ops::weight_f32(wb.get(lp + "input_layernorm.weight", {hidden}));
    L.post_norm = ops::weight_f32(wb.get(lp + "post_attention_layernorm.weight", {hidden}));
    L.q_norm = ops::weight_f32(wb.get(lp + "self_attn.q_norm.weight", {D}));
    L.k_norm = ops::weight_f32(wb.get(lp + "self_attn.k_norm.weight", {D}));
    L.q_proj = wb.get(lp + "self_attn.q_proj.weight", {q_width, hidden});
    L.k_proj = wb.get(lp + "self_attn.k_proj.weight", {kv_width, hidden});
    L.v_proj = wb.get(lp + "self_attn.v_proj.weight", {kv_width, hidden});
    L.o_proj = wb.get(lp + "self_attn.o_proj.weight", {hidden, q_width});
    L.gate_proj = wb.get(lp + "mlp.gate_proj.weight", {inter, hidden});
    L.up_proj = wb.get(lp + "mlp.up_proj.weight", {inter, hidden});
    L.down_proj = wb.get(lp + "mlp.down_proj.weight", {hidden, inter});
  }
  // Spec §8.1: the head is tied to embed_tokens; transformers does not save the duplicate.
  const std::string head = "llm.lm_head.weight";
  if (wb.has(head) && !cfg.tie_word_embeddings) {
    m.lm_head_ = wb.get(head, {cfg.vocab_size, hidden});
  } else {
    if (wb.has(head)) wb.ignore(head);
    m.lm_head_ = m.embed_tokens_;
  }
  // HF default RoPE: inv_freq = 1 / theta^(float(2j) / dim), all in fp32 (spec §6).
  m.inv_freq_.resize(D / 2);
  const float theta = float(cfg.rope_theta);
  for (int64_t j = 0; j < D / 2; ++j)
    m.inv_freq_[j] = 1.0f / std::pow(theta, float(2 * j) / float(D));
  return m;
}

Tensor Qwen3::embed(const std::vector<int64_t>& ids) const {
  return ops::embedding(embed_tokens_, ids);
}

KvCache Qwen3::make_cache(int64_t max_tokens) const {
  return KvCache(cfg_.num_layers, max_tokens, int64_t(cfg_.num_kv_heads) * cfg_.head_dim);
}

void Qwen3::rope_tables(int64_t start, int64_t L, Tensor* cos, Tensor* sin) const {
  const int64_t half = int64_t(inv_freq_.size());
  *cos = Tensor::empty({L, half});
  *sin = Tensor::empty({L, half});
  // Spec §6, §9.1: the reference casts cos/sin to bf16 before multiplying bf16 q/k.
  const bool round = ops::precision() == ops::Precision::BF16;
  float* c = cos->f32();
  float* s = sin->f32();
  for (int64_t l = 0; l < L; ++l)
    for (int64_t j = 0; j < half; ++j) {
      const float angle = float(start + l) * inv_freq_[j];
      float cv = std::cos(angle), sv = std::sin(angle);
      if (round) {
        cv = round_bf16(cv);
        sv = round_bf16(sv);
      }
      c[l * half + j] = cv;
      s[l * half + j] = sv;
    }
}

void Qwen3::run_layer(int index, Tensor& x, const Tensor& cos, const Tensor& sin,
                      KvCache* cache) const {
  const Layer& w = layers_[index];
  const int64_t L = x.dim(0), D = cfg_.head_dim;
  const int H = cfg_.num_heads, Hkv = cfg_.num_kv_heads;
  const float eps = cfg_.rms_norm_eps;

  // Attention block. q/k/v are three GEMVs at decode; a fused [q;k;v] weight would save two
  // passes over the (small) activation and two thread fork/joins per layer.
  Tensor xn = ops::rms_norm(x, &w.input_norm, eps);
  Tensor q = ops::linear(xn, w.q_proj);
  Tensor k = ops::linear(xn, w.k_proj);
  Tensor v = ops::linear(xn, w.v_proj);
  // Spec §6: q_norm/k_norm are RMSNorms over head_dim, per head, before RoPE.
  q = ops::rms_norm(q.reshape({L * H, D}), &w.q_norm, eps).reshape({L, H * D});
  k = ops::rms_norm(k.reshape({L * Hkv, D}), &w.k_norm, eps).reshape({L, Hkv * D});
  ops::rope_(q, H, cos, sin, ops::RopeLayout::HalfSplit);
  ops::rope_(k, Hkv, cos, sin, ops::RopeLayout::HalfSplit);
  const float scale = 1.0f / std::sqrt(float(D));
  // Long prompts: attention is O(L^2 * head_dim) per head (tiled, AMX in bf16 mode); at ~1k
  // tokens (one image prompt) its FLOPs are ~8% of the layer GEMMs'.
  Tensor attn;
  if (cache) {
    cache->write(index, k, v);
    const int64_t end = cache->size() + L;
    attn = ops::attention(q, cache->keys(index, end), cache->values(index, end), H, Hkv, scale,
                          /*causal=*/true);
  } else {
    attn = ops::attention(q, k, v, H, Hkv, scale, /*causal=*/true);
  }
  ops::add_(x, ops::linear(attn, w.o_proj));

  // SwiGLU MLP.
  Tensor hn = ops::rms_norm(x, &w.post_norm, eps);
  Tensor act = ops::swiglu(ops::linear(hn, w.gate_proj), ops::linear(hn, w.up_proj));
  ops::add_(x, ops::linear(act, w.down_proj));
}

void Qwen3::check_embeds(const Tensor& embeds) const {
  if (embeds.dtype() != DType::F32 || embeds.ndim() != 2 || embeds.dim(1) != cfg_.hidden_size ||
      embeds.dim(0) < 1)
    fail("Qwen3: input embeddings must be f32 [L >= 1, ", cfg_.hidden_size, "], got ",
         dtype_name(embeds.dtype()), " ", shape_str(embeds.shape()));
}

Tensor Qwen3::forward(const Tensor& embeds, KvCache& cache, LlmTrace* trace) const {
  check_embeds(embeds);
  const int64_t L = embeds.dim(0), start = cache.size();
  if (cache.layers() != cfg_.num_layers ||
      cache.kv_width() != int64_t(cfg_.num_kv_heads) * cfg_.head_dim)
    fail("Qwen3: KV cache was not made for this model (use Qwen3::make_cache)");
  if (start + L > cache.capacity())
    fail("KV cache full: ", start, " + ", L, " tokens exceed its capacity of ", cache.capacity());
  Tensor cos, sin;
  rope_tables(start, L, &cos, &sin);
  if (trace) trace->layer_out.clear();
  Tensor x = embeds.clone();
  for (int i = 0; i < cfg_.num_layers; ++i) {
    run_layer(i, x, cos, sin, &cache);
    if (trace) trace->layer_out.push_back(x.clone());
  }
  cache.advance(L);
  Tensor out = ops::rms_norm(x, &final_norm_, cfg_.rms_norm_eps);
  if (trace) trace->final_norm = out.clone();
  return out;
}

Tensor Qwen3::logits(const Tensor& hidden) const {
  if (hidden.dtype() != DType::F32 || hidden.dim(-1) != cfg_.hidden_size)
    fail("Qwen3::logits: hidden states must be f32 [rows, ", cfg_.hidden_size, "], got ",
         shape_str(hidden.shape()));
  // Decode hot spot: the tied head streams the whole [vocab, hidden] table for every token
  // (151936 x 2048 bf16 = 622 MB, ~18% of Qwen3-1.7B's per-token weight traffic).
  return ops::linear(hidden, lm_head_);
}

Tensor Qwen3::condition(const Tensor& embeds) const {
  check_embeds(embeds);
  const int64_t L = embeds.dim(0);
  Tensor cos, sin;
  rope_tables(0, L, &cos, &sin);
  Tensor x = embeds.clone();
  Tensor last_input;
  for (int i = 0; i < cfg_.num_layers; ++i) {
    if (i == cfg_.num_layers - 1) last_input = x.clone();
    run_layer(i, x, cos, sin, nullptr);
  }
  // Spec §7.1: hidden_states[-1] (normed) first, then hidden_states[-2] (raw residual).
  return ops::concat_cols({ops::rms_norm(x, &final_norm_, cfg_.rms_norm_eps), last_input});
}

}  // namespace ovis
