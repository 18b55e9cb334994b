#include "vision/preprocess.hpp"

#include <array>

#include "core/error.hpp"
#include "vision/resize.hpp"

namespace ovis {

PreprocessedImage preprocess_image(const Image& img, const PreprocessorConfig& cfg) {
  const int patch = cfg.patch_size, stride = cfg.hidden_stride, tps = cfg.temporal_patch_size;
  if (patch <= 0 || stride <= 0 || tps <= 0)
    fail(
        "preprocessor_config.json: patch_size, hidden_stride and temporal_patch_size must be "
        "positive");
  if (cfg.resample != 3)
    fail("preprocessor_config.json: resample ", cfg.resample,
         " is not supported (only 3, BICUBIC)");
  const ImageSize size =
      smart_resize(img.height, img.width, patch * stride, cfg.min_pixels, cfg.max_pixels);

  PreprocessedImage out;
  out.resized = resize_bicubic(img, size.width, size.height);
  out.grid_h = size.height / patch;
  out.grid_w = size.width / patch;
  out.grid_t = 1;  // one image, tiled temporal_patch_size times (Qwen2-VL convention)

  // The normalised value depends only on (channel, byte): tabulate it once. Rescale in double,
  // stored as float32; normalise in float32 (transformers 4.51 slow CLIPImageProcessor).
  std::array<std::array<float, 256>, 3> lut;
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v) {
      float x = float(double(v) * cfg.rescale_factor);
      lut[c][v] = (x - cfg.image_mean[c]) / cfg.image_std[c];
    }

  const int cols = 3 * tps * patch * patch;
  const int cells_w = out.grid_w / stride;
  const int64_t rows = int64_t(out.grid_h) * out.grid_w;
  out.pixel_values = Tensor::empty({rows, cols}, DType::F32);
  float* pv = out.pixel_values.mutable_f32();
  const uint8_t* rgb = out.resized.rgb.data();
  const int width = out.resized.width;
#pragma omp parallel for schedule(static) if (rows > 256)
  for (int64_t s = 0; s < rows; ++s) {
    const int64_t cell = s / (stride * stride);
    const int sub = int(s % (stride * stride));
    const int prow = int(cell / cells_w) * stride + sub / stride;
    const int pcol = int(cell % cells_w) * stride + sub % stride;
    float* dst = pv + s * cols;
    for (int c = 0; c < 3; ++c)
      for (int t = 0; t < tps; ++t)
        for (int y = 0; y < patch; ++y) {
          const uint8_t* src = rgb + (size_t(prow * patch + y) * width + size_t(pcol) * patch) * 3;
          float* d = dst + ((c * tps + t) * patch + y) * patch;
          for (int x = 0; x < patch; ++x) d[x] = lut[c][src[3 * x + c]];
        }
  }
  return out;
}

}  // namespace ovis
