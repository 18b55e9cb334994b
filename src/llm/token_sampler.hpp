// Next-token selection from one row of logits. Greedy (temperature 0) is what the reference uses
// for understanding (spec §6: do_sample=False); sampling follows the HF warper order
// temperature -> top-k -> top-p, then draws from the renormalised distribution.
#pragma once
#include <cstdint>
#include <vector>

#include "ovis/types.hpp"

namespace ovis {

class TokenSampler {
 public:
  explicit TokenSampler(SamplerParams p);
  // Greedy: argmax, ties resolved to the lowest id (as torch.argmax).
  int64_t sample(const float* logits, int64_t vocab);
  const SamplerParams& params() const { return p_; }
  // argmax with ties to the lowest index; NaN is never chosen unless every value is NaN.
  static int64_t argmax(const float* x, int64_t n);

 private:
  double next_uniform();  // [0, 1)

  SamplerParams p_;
  uint64_t state_;
  std::vector<int64_t> ids_;  // scratch, reused across calls
  std::vector<float> probs_;
};

}  // namespace ovis
