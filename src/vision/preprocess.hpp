// Understanding-side image preprocessing (spec §4.2): smart_resize, Pillow bicubic, rescale and
// normalise, then patch rows in the 2x2-merge order that the ViT and its position grid expect.
#pragma once
#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/image.hpp"

namespace ovis {

struct PreprocessedImage {
  // [grid_h * grid_w, 3 * temporal_patch_size * patch_size^2] F32. Row s belongs to merge cell
  // (i, j) (row-major over (grid_h / stride, grid_w / stride)) and sub-position (dy, dx):
  // s = (i * grid_w / stride + j) * stride^2 + dy * stride + dx, i.e. the patch at patch-row
  // i * stride + dy, patch-col j * stride + dx. Each row is (channel, time, y, x) row-major.
  Tensor pixel_values;
  int grid_t = 1;  // grid_thw = [grid_t, grid_h, grid_w]
  int grid_h = 0;  // in patches
  int grid_w = 0;
  Image resized;  // the Pillow-resized image: grid_h * patch_size x grid_w * patch_size
};

// spec §4.2 with the processor config: smart_resize(H, W, patch_size * hidden_stride,
// min_pixels, max_pixels), Pillow BICUBIC, x * rescale_factor in double stored as float32,
// (x - mean) / std in float32.
PreprocessedImage preprocess_image(const Image& img, const PreprocessorConfig& cfg);

}  // namespace ovis
