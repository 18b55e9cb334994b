// Resizing rules of the reference: Pillow's antialiased bicubic resample (every PIL resize in
// the reference, spec §9.6) and Qwen2-VL's smart_resize (spec §4.1).
#pragma once
#include <cstdint>

#include "io/image.hpp"

namespace ovis {

// Byte-exact Pillow Image.resize((out_width, out_height), Image.BICUBIC) of an RGB image
// (Pillow >= 7 ImagingResample, default box and no reducing_gap). Same size returns a copy.
Image resize_bicubic(const Image& src, int out_width, int out_height);

struct ImageSize {
  int height = 0;
  int width = 0;
  bool operator==(const ImageSize&) const = default;
};

// Defaults of the reference's smart_resize signature (spec §4.1).
inline constexpr int kSmartResizeFactor = 28;
inline constexpr int64_t kSmartResizeMinPixels = 56 * 56;
inline constexpr int64_t kSmartResizeMaxPixels = 14 * 14 * 4 * 1280;

// spec §4.1: (height, width) rounded to multiples of `factor` (Python round-half-to-even) with
// the pixel count brought into [min_pixels, max_pixels]; sides below `factor` are raised to it
// first, otherwise an aspect ratio above 200 is clipped. Throws on non-positive inputs or a
// degenerate result.
ImageSize smart_resize(int height, int width, int factor = kSmartResizeFactor,
                       int64_t min_pixels = kSmartResizeMinPixels,
                       int64_t max_pixels = kSmartResizeMaxPixels);

}  // namespace ovis
