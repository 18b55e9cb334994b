// The rotary-frequency builders of the three models (one family): each returns the per-pair
// frequencies that ops::rope_table turns into cos/sin tables for given positions.
#pragma once
#include <vector>

#include "ops/ops.hpp"

namespace ovis::nn {

// HF default RoPE (Qwen3, spec §6): one axis, inv_freq_j = 1 / theta^(float(2j) / dim) in
// float32, angles in float32; with round_bf16 the tables are rounded as the bf16 reference does.
ops::RopeFreqs rope_freqs_1d(double theta, int dim, bool round_bf16);

// AIMv2 VisionRotaryEmbedding(head_dim / 2) (spec §4.4): head_dim/4 frequencies
// 1 / theta^(2j / (head_dim/2)) in float32, first for the patch row (axis 0), then the same for
// the patch column (axis 1); used with the half-split layout over the full head.
ops::RopeFreqs rope_freqs_2d(double theta, int head_dim);

// FLUX EmbedND (spec §7.8): axis a contributes axes_dim[a]/2 pairs with
// ω_k = θ^(−2k/axes_dim[a]), axes concatenated in order; angles and cos/sin in float64.
ops::RopeFreqs rope_freqs_nd(const std::vector<int>& axes_dim, double theta);

}  // namespace ovis::nn
