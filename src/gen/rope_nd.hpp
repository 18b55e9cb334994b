// Multi-axis rotary tables of the DiT (spec §7.8, FLUX `EmbedND`).
#pragma once
#include <vector>

#include "core/tensor.hpp"

namespace ovis {

// cos/sin [L, pairs] f32, pairs = sum(axes_dim)/2, for ops::rope_ with RopeLayout::Interleaved.
struct RopeTable {
  Tensor cos, sin;
  int64_t rows() const { return cos.dim(0); }
  // Rows [begin, end), sharing storage.
  RopeTable slice(int64_t begin, int64_t end) const {
    return {cos.slice_rows(begin, end), sin.slice_rows(begin, end)};
  }
};

// ids [L, n_axes] (float positions, one column per axis). Axis a contributes axes_dim[a]/2 pairs
// with ω_k = θ^(−2k/axes_dim[a]); the pairs of the axes are concatenated in order. Angles and
// their cos/sin are computed in float64 and stored as float32, as the reference does.
RopeTable rope_nd(const Tensor& ids, const std::vector<int>& axes_dim, double theta);

// The reference's `pe` layout [L, pairs, 2, 2] = [[cos, −sin], [sin, cos]] (for traces/tests).
Tensor rope_rotation_matrices(const RopeTable& table);

}  // namespace ovis
