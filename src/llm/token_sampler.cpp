#include "llm/token_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.hpp"

namespace ovis {

int64_t TokenSampler::argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best] || (std::isnan(x[best]) && !std::isnan(x[i]))) best = i;
  return best;
}

TokenSampler::TokenSampler(SamplerParams p) : p_(p), state_(p.seed) {
  if (!(p_.temperature >= 0)) fail("sampler: temperature must be >= 0, got ", p_.temperature);
  if (p_.top_k < 0) fail("sampler: top_k must be >= 0, got ", p_.top_k);
  if (!(p_.top_p > 0 && p_.top_p <= 1)) fail("sampler: top_p must be in (0, 1], got ", p_.top_p);
}

// splitmix64: a small, portable generator, so a seed gives the same tokens everywhere.
double TokenSampler::next_uniform() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

int64_t TokenSampler::sample(const float* logits, int64_t vocab) {
  OVIS_ASSERT(vocab > 0);
  if (p_.temperature == 0 || p_.top_k == 1) return argmax(logits, vocab);

  // Candidates sorted by logit, descending (ties: lower id first). With top-k only the first k
  // are ordered; top-p without top-k sorts the whole vocabulary (~150k, a few ms per token).
  ids_.resize(size_t(vocab));
  std::iota(ids_.begin(), ids_.end(), int64_t(0));
  auto before = [logits](int64_t a, int64_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  int64_t n = vocab;
  if (p_.top_k > 0 && p_.top_k < vocab) {
    n = p_.top_k;
    std::partial_sort(ids_.begin(), ids_.begin() + n, ids_.end(), before);
  } else {
    std::sort(ids_.begin(), ids_.end(), before);
  }

  // Softmax over the candidates at the given temperature (fp32 values, double accumulation).
  probs_.resize(size_t(n));
  const double inv_t = 1.0 / double(p_.temperature);
  const double mx = double(logits[ids_[0]]) * inv_t;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    probs_[i] = float(std::exp(double(logits[ids_[i]]) * inv_t - mx));
    sum += probs_[i];
  }

  // Nucleus: the smallest prefix whose probability reaches top_p (at least one token).
  if (p_.top_p < 1.0f) {
    double cum = 0;
    int64_t keep = 0;
    while (keep < n) {
      cum += probs_[keep] / sum;
      ++keep;
      if (cum >= double(p_.top_p)) break;
    }
    n = keep;
    sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += probs_[i];
  }

  const double r = next_uniform() * sum;
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    acc += probs_[i];
    if (r < acc) return ids_[i];
  }
  return ids_[n - 1];
}

}  // namespace ovis
