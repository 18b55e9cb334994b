// Token-by-token decoding at the end of a KV cache. One decode step (embedding, every layer, the
// final norm, the LM head and, when greedy, the argmax) is recorded once as an ops graph
// (ops/graph.hpp) and replayed per token; its inputs (token id, position) live in device tensors
// that the step itself advances. On a GPU that is one graph launch and one host synchronisation
// per token: reading the chosen id (greedy) or the logits row (sampling on the host).
#pragma once
#include <cstdint>
#include <memory>

#include "core/tensor.hpp"
#include "llm/kv_cache.hpp"
#include "llm/qwen3.hpp"
#include "ops/graph.hpp"

namespace ovis {

class TokenDecoder {
 public:
  // `cache` must outlive the decoder and keep its storage (the recorded step writes into it).
  TokenDecoder(const Qwen3& llm, KvCache& cache, bool greedy);
  TokenDecoder(const TokenDecoder&) = delete;

  // Feeds `token` at position cache.size() and advances the cache by one; returns the argmax of
  // the new logits (ties to the lowest id). Needs greedy = true.
  int64_t next_greedy(int64_t token);
  // Same, returning the new logits row as host f32 [vocab] (for sampling on the host).
  Tensor next_logits(int64_t token);

 private:
  void step(int64_t token);

  const Qwen3& llm_;
  KvCache& cache_;
  bool greedy_;
  ops::Context ctx_;
  Tensor token_, pos_;    // step inputs on the device: I32 [1], F32 [1]
  Tensor logits_, next_;  // step outputs: logits [1, vocab], argmax I32 [1] (greedy)
  std::unique_ptr<ops::OpGraph> graph_;
  int64_t token_on_device_ = -1;  // what token_ holds
  int64_t pos_on_device_ = -1;    // what pos_ holds
};

}  // namespace ovis
