#include "llm/token_decoder.hpp"

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis {

TokenDecoder::TokenDecoder(const Qwen3& llm, KvCache& cache, bool greedy)
    : llm_(llm), cache_(cache), greedy_(greedy), ctx_(llm.context()) {
  token_ = ops::zeros(ctx_, {1}, DType::I32);
  pos_ = ops::zeros(ctx_, {1}, DType::F32);
}

void TokenDecoder::step(int64_t token) {
  if (cache_.size() >= cache_.capacity())
    fail("KV cache full: ", cache_.size(), " + 1 tokens exceed its capacity of ",
         cache_.capacity());
  if (token < 0 || token >= llm_.config().vocab_size)
    fail("token id ", token, " outside the embedding table of ", llm_.config().vocab_size, " rows");
  // Inputs are written only when the previous step did not already leave them in place.
  if (token != token_on_device_) {
    // Host sync point: the sampled token id goes up from the host.
    Tensor t = Tensor::empty({1}, DType::I32);
    t.mutable_data<int32_t>()[0] = int32_t(token);
    ops::upload_(ctx_, token_, t);
    token_on_device_ = token;
  }
  if (cache_.size() != pos_on_device_) {
    // Positions are exact integers in f32 (far below 2^24).
    ops::upload_(ctx_, pos_, Tensor::full({1}, float(cache_.size())));
    pos_on_device_ = cache_.size();
  }
  if (!graph_) {
    graph_ = ops::capture(ctx_, [this] {
      logits_ = llm_.decode_step(token_, pos_, cache_);
      if (greedy_) {
        next_ = ops::argmax(ctx_, logits_);
        ops::copy_(ctx_, token_, next_);
      }
      ops::affine_(ctx_, pos_, 1.0f, 1.0f);
    });
  }
  graph_->replay();
  cache_.advance(1);
  pos_on_device_ += 1;
  token_on_device_ = greedy_ ? -1 : token;  // greedy: known once the id is read back
}

int64_t TokenDecoder::next_greedy(int64_t token) {
  OVIS_ASSERT(greedy_);
  step(token);
  // Host sync point: the chosen id.
  const int64_t id = next_.to(Device::cpu()).data<int32_t>()[0];
  token_on_device_ = id;
  return id;
}

Tensor TokenDecoder::next_logits(int64_t token) {
  step(token);
  // Host sync point: the logits row.
  const Tensor h = logits_.to(Device::cpu());
  return h.dtype() == DType::F32 ? h : h.to_f32();
}

}  // namespace ovis
