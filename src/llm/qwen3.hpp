// The Qwen3 decoder of Ovis-U1 (spec §6, §7.1; weights §8.1): token embedding, the decoder
// layers with GQA, per-head q/k RMSNorm and half-split RoPE, SwiGLU MLPs, the final RMSNorm and
// the tied LM head. Weights are bound once through nn layers on the model's context.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "llm/kv_cache.hpp"
#include "nn/layers.hpp"
#include "ops/ops.hpp"

namespace ovis {

// Intermediate states of one forward(), for golden tests and debugging.
struct LlmTrace {
  std::vector<Tensor> layer_out;  // residual stream after each decoder layer, [L, hidden]
  Tensor final_norm;              // model.norm(output of the last layer), [L, hidden]
};

class Qwen3 {
 public:
  // Binds `llm.model.*` (and `llm.lm_head.weight` unless tied or absent, spec §8.1).
  static Qwen3 load(WeightBinder& wb, const ops::Context& ctx, const LlmConfig& cfg);

  const LlmConfig& config() const { return cfg_; }
  const ops::Context& context() const { return ctx_; }

  // Rows of embed_tokens for `ids`, [L, hidden] in the context's activation dtype.
  Tensor embed(const std::vector<int64_t>& ids) const;
  // A cache holding up to max_tokens positions for every layer.
  KvCache make_cache(int64_t max_tokens) const;

  // Runs embeds [L, hidden] at positions cache.size() .. cache.size()+L-1 (causal over everything
  // in the cache), appends their K/V to the cache and returns the final-RMSNormed hidden states
  // [L, hidden]. With a trace, also records each layer's output and the final-norm output.
  Tensor forward(const Tensor& embeds, KvCache& cache, LlmTrace* trace = nullptr) const;
  // One decode step whose inputs live on the model's device, so that it can be recorded once
  // as an ops graph and replayed per token (llm/token_decoder.hpp): token I32 [1], pos F32 [1]
  // (the cache row it fills, = the position id). Writes K/V at row pos of every layer of
  // `cache` and returns logits [1, vocab]. Does not advance the cache: the caller does.
  Tensor decode_step(const Tensor& token, const Tensor& pos, KvCache& cache) const;
  // hidden [rows, hidden] -> logits [rows, vocab] through the (tied) LM head.
  Tensor logits(const Tensor& hidden) const;
  // The generation condition of spec §7.1: [L, 2*hidden] = concat(final-normed output of the last
  // layer, input of the last layer), all positions, positions 0..L-1, no cache kept.
  Tensor condition(const Tensor& embeds) const;

 private:
  struct Layer {
    nn::RmsNorm input_norm, post_norm, q_norm, k_norm;
    nn::Linear q_proj, k_proj, v_proj, o_proj;
    nn::Linear gate_proj, up_proj, down_proj;
  };

  // One decoder layer on x [L, hidden] in place. With a cache, K/V are written at rows
  // [p, p + L) and attention reads rows [0, p + L), p = cache->size() or, with `pos`, the
  // position that device tensor holds; without a cache, attention is over x alone (positions
  // start at 0).
  void run_layer(int index, Tensor& x, const ops::RopeTable& rope, KvCache* cache,
                 const Tensor* pos = nullptr) const;
  void check_cache(const KvCache& cache) const;
  void check_embeds(const Tensor& embeds) const;

  ops::Context ctx_;
  LlmConfig cfg_;
  Tensor embed_tokens_;
  nn::Linear lm_head_;
  nn::RmsNorm final_norm_;
  std::vector<Layer> layers_;
  ops::RopeFreqs rope_;  // spec §6 (cos/sin bf16-rounded in BF16 precision, §9.1)
};

}  // namespace ovis
