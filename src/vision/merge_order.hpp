// The 2x2-merge patch order of spec §4.2 step 5: sequence slot s holds the patch at
// (row, col) = (S*i + dy, S*j + dx) with s = ((i * gw/S + j) * S + dy) * S + dx, S the stride.
// The pixel rows, the interpolated position embedding (§4.3) and the RoPE positions (§4.4)
// all follow this order, so that every run of S*S consecutive rows is one merge cell (§4.5).
#pragma once
#include <vector>

#include "core/error.hpp"
#include "core/tensor.hpp"

namespace ovis {

struct PatchPos {
  int row = 0;
  int col = 0;
};

// (row, col) of every sequence slot of a grid_h x grid_w patch grid (both multiples of stride).
inline std::vector<PatchPos> merge_order_positions(int grid_h, int grid_w, int stride) {
  if (stride < 1 || grid_h <= 0 || grid_w <= 0 || grid_h % stride || grid_w % stride)
    fail("vision: patch grid ", grid_h, "x", grid_w,
         " is not a positive multiple of the merge stride ", stride);
  std::vector<PatchPos> pos;
  pos.reserve(size_t(grid_h) * grid_w);
  for (int i = 0; i < grid_h / stride; ++i)
    for (int j = 0; j < grid_w / stride; ++j)
      for (int dy = 0; dy < stride; ++dy)
        for (int dx = 0; dx < stride; ++dx) pos.push_back({i * stride + dy, j * stride + dx});
  return pos;
}

// The same positions as a host table [grid_h*grid_w, 2] f32 of (row, col), for the RoPE tables.
inline Tensor merge_order_position_table(int grid_h, int grid_w, int stride) {
  const std::vector<PatchPos> pos = merge_order_positions(grid_h, grid_w, stride);
  Tensor t = Tensor::empty({int64_t(pos.size()), 2});
  float* p = t.mutable_f32();
  for (size_t i = 0; i < pos.size(); ++i) {
    p[2 * i] = float(pos[i].row);
    p[2 * i + 1] = float(pos[i].col);
  }
  return t;
}

}  // namespace ovis
