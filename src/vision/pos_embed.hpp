// The learned absolute position embedding of AIMv2 (spec §4.3): a square grid of learned
// vectors, resized to the image's patch grid with PyTorch's bicubic interpolation
// (F.interpolate mode='bicubic', align_corners=False: cubic convolution A = -0.75, source
// coordinate (dst + 0.5) * in/out - 0.5, taps clamped at the borders, no antialiasing), then
// reordered into the 2x2-merge order. Note this is not Pillow's bicubic (spec §9.6).
#pragma once
#include "core/tensor.hpp"

namespace ovis {

// grid [src_h * src_w, C] (row-major positions, channels last; f32) -> [dst_h * dst_w, C].
// Same size is exactly the identity.
Tensor bicubic_resize_grid(const Tensor& grid, int src_h, int src_w, int dst_h, int dst_w);

// pos_embed [1, side*side, C] or [side*side, C] (any float dtype) resized to grid_h x grid_w
// and returned in the merge order of `stride` (vision/merge_order.hpp): [grid_h * grid_w, C].
Tensor interpolate_pos_embed(const Tensor& pos_embed, int side, int grid_h, int grid_w, int stride);

}  // namespace ovis
