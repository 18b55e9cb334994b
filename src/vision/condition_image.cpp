#include "vision/condition_image.hpp"

#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "vision/resize.hpp"

namespace ovis {

namespace {

// Source offset of output index 0 along one side (negative: zero padding before the image).
int crop_offset(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  return int(std::nearbyint((size - crop) / 2.0));  // Python round(): half to even
}

}  // namespace

Image center_crop(const Image& img, int crop_width, int crop_height) {
  check_image_size(crop_width, crop_height, "center_crop target");
  const int ox = crop_offset(img.width, crop_width);
  const int oy = crop_offset(img.height, crop_height);
  Image out;
  out.width = crop_width;
  out.height = crop_height;
  out.rgb.assign(size_t(crop_width) * crop_height * 3, 0);
  for (int y = 0; y < crop_height; ++y) {
    const int sy = y + oy;
    if (sy < 0 || sy >= img.height) continue;
    const int x0 = std::max(0, -ox), x1 = std::min(crop_width, img.width - ox);
    if (x1 <= x0) continue;
    std::memcpy(&out.rgb[(size_t(y) * crop_width + x0) * 3], img.pixel(x0 + ox, sy),
                size_t(x1 - x0) * 3);
  }
  return out;
}

Tensor vae_pixel_values(const Image& img) {
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = (float(v) / 255.0f - 0.5f) / 0.5f;
  const int64_t hw = int64_t(img.height) * img.width;
  Tensor t = Tensor::empty({3, img.height, img.width}, DType::F32);
  float* p = t.mutable_f32();
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < hw; ++i) p[c * hw + i] = lut[img.rgb[size_t(i) * 3 + c]];
  return t;
}

ConditionImage process_image_aspectratio(const Image& img, int width, int height) {
  check_image_size(width, height, "process_image_aspectratio target");
  check_image_size(img.width, img.height, "process_image_aspectratio source");
  const double r = std::max(double(width) / img.width, double(height) / img.height);
  const int64_t rh = int64_t(r * img.height), rw = int64_t(r * img.width);
  check_image_size(rw, rh, "process_image_aspectratio resize");
  ConditionImage out;
  out.cropped = center_crop(resize_bicubic(img, int(rw), int(rh)), width, height);
  out.vae_pixel_values = vae_pixel_values(out.cropped);
  return out;
}

Image preshrink_for_llm(const Image& img, const PreprocessorConfig& cfg) {
  const ImageSize s = smart_resize(img.height, img.width, cfg.patch_size * cfg.hidden_stride,
                                   kSmartResizeMinPixels, cfg.min_pixels);
  return resize_bicubic(img, s.width, s.height);
}

}  // namespace ovis
