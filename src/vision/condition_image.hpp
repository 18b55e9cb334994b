// Generation-side image preparation (spec §7.2, §7.3): the aspect-ratio resize + center crop of
// YakModel.process_image_aspectratio, the VAE input tensor, the LLM pre-shrink, and the
// position ids of packed latent tokens.
#pragma once
#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/image.hpp"

namespace ovis {

// torchvision center_crop on a PIL image: offsets int(round((size - crop) / 2)) (half to even);
// a side smaller than the crop is first zero-padded by (crop - size) // 2 before and the rest
// after.
Image center_crop(const Image& img, int crop_width, int crop_height);

// [3, H, W] F32 in [-1, 1]: torchvision to_tensor (x / 255 in float32) then
// normalize(0.5, 0.5), i.e. (x / 255 - 0.5) / 0.5 with float32 rounding at each step.
Tensor vae_pixel_values(const Image& img);

struct ConditionImage {
  Image cropped;            // width x height
  Tensor vae_pixel_values;  // [3, height, width]
};

// spec §7.2 step 1: r = max(width / w, height / h), Pillow bicubic to (int(r * h), int(r * w))
// (H x W), then center_crop to width x height.
ConditionImage process_image_aspectratio(const Image& img, int width, int height);

// spec §7.2 step 2: smart_resize(H, W, patch_size * hidden_stride, 56 * 56, cfg.min_pixels),
// then Pillow bicubic to that size.
Image preshrink_for_llm(const Image& img, const PreprocessorConfig& cfg);

}  // namespace ovis
