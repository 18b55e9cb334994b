#include "vision/resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"

namespace ovis {

namespace {

// Pillow's fixed-point format for 8-bit resampling: 32 bits minus 8 for the sample, minus 2 of
// headroom for coefficient sums above 1 (negative lobes).
constexpr int kPrecisionBits = 32 - 8 - 2;

// Keys' cubic with a = -0.5, written in Pillow's evaluation order so that the double results
// (and hence the rounded fixed-point coefficients) are identical.
double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
constexpr double kBicubicSupport = 2.0;

// Per output index: the first input index, the tap count, and `ksize` fixed-point weights.
struct Taps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Taps compute_taps(int in_size, int out_size) {
  // The box is the whole image: in0 = 0, in1 = in_size.
  const double scale = double(in_size) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = kBicubicSupport * filterscale;
  Taps t;
  t.ksize = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(size_t(out_size) * t.ksize, 0);
  std::vector<double> k(t.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // Pillow rounds the box ends with int(v + 0.5) (truncation), then clips to the image.
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double w = bicubic_kernel((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    int32_t* out = &t.weights[size_t(xx) * t.ksize];
    for (int x = 0; x < xmax; ++x) {
      double w = ww != 0.0 ? k[x] / ww : k[x];
      // Round half away from zero into fixed point, as Pillow's normalize_coeffs_8bpc.
      out[x] = w < 0 ? int32_t(-0.5 + w * (1 << kPrecisionBits))
                     : int32_t(0.5 + w * (1 << kPrecisionBits));
    }
    t.first[xx] = xmin;
    t.count[xx] = xmax;
  }
  return t;
}

inline uint8_t clip8(int64_t acc) {
  int64_t v = acc >> kPrecisionBits;
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Horizontal pass over source rows [row0, row0 + out_h) into an out_w-wide image.
void resample_horizontal(const Image& in, int row0, int out_h, const Taps& t, Image& out) {
  const int out_w = int(t.first.size());
#pragma omp parallel for schedule(static) if (int64_t(out_w) * out_h > 65536)
  for (int yy = 0; yy < out_h; ++yy) {
    const uint8_t* src = in.rgb.data() + size_t(yy + row0) * in.width * 3;
    uint8_t* dst = out.rgb.data() + size_t(yy) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &t.weights[size_t(xx) * t.ksize];
      const uint8_t* s = src + size_t(t.first[xx]) * 3;
      int64_t acc0 = 1 << (kPrecisionBits - 1), acc1 = acc0, acc2 = acc0;
      for (int x = 0; x < t.count[xx]; ++x) {
        acc0 += int64_t(s[3 * x]) * k[x];
        acc1 += int64_t(s[3 * x + 1]) * k[x];
        acc2 += int64_t(s[3 * x + 2]) * k[x];
      }
      dst[3 * xx] = clip8(acc0);
      dst[3 * xx + 1] = clip8(acc1);
      dst[3 * xx + 2] = clip8(acc2);
    }
  }
}

// Vertical pass; t.first is relative to the first row of `in`.
void resample_vertical(const Image& in, const Taps& t, int row_shift, Image& out) {
  const int out_h = int(t.first.size());
  const size_t row_bytes = size_t(in.width) * 3;
#pragma omp parallel for schedule(static) if (int64_t(in.width) * out_h > 65536)
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &t.weights[size_t(yy) * t.ksize];
    const uint8_t* src = in.rgb.data() + size_t(t.first[yy] - row_shift) * row_bytes;
    uint8_t* dst = out.rgb.data() + size_t(yy) * row_bytes;
    for (size_t i = 0; i < row_bytes; ++i) {
      int64_t acc = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < t.count[yy]; ++y) acc += int64_t(src[size_t(y) * row_bytes + i]) * k[y];
      dst[i] = clip8(acc);
    }
  }
}

Image blank(int width, int height) {
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(size_t(width) * height * 3);
  return img;
}

int64_t python_round(double v) {
  return int64_t(std::nearbyint(v));
}  // half-to-even

}  // namespace

Image resize_bicubic(const Image& src, int out_width, int out_height) {
  check_image_size(src.width, src.height, "resize_bicubic source");
  check_image_size(out_width, out_height, "resize_bicubic target");
  OVIS_ASSERT(src.rgb.size() == size_t(src.width) * src.height * 3);
  const bool need_h = out_width != src.width;
  const bool need_v = out_height != src.height;
  if (!need_h && !need_v) return src;

  const Taps th = compute_taps(src.width, out_width);
  const Taps tv = compute_taps(src.height, out_height);
  // Pillow's two-pass order: the horizontal pass only produces the source rows that the
  // vertical taps read, [first row of output 0, end of the last output's taps).
  const int row_first = tv.first.front();
  const int row_last = tv.first.back() + tv.count.back();

  if (!need_v) {
    Image out = blank(out_width, src.height);
    resample_horizontal(src, 0, src.height, th, out);
    return out;
  }
  Image out = blank(out_width, out_height);
  if (need_h) {
    Image tmp = blank(out_width, row_last - row_first);
    resample_horizontal(src, row_first, row_last - row_first, th, tmp);
    resample_vertical(tmp, tv, row_first, out);
  } else {
    resample_vertical(src, tv, 0, out);
  }
  return out;
}

ImageSize smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels) {
  if (height <= 0 || width <= 0)
    fail("smart_resize: image size ", height, "x", width, " must be positive");
  if (factor <= 0 || min_pixels < 0 || max_pixels <= 0 || min_pixels > max_pixels)
    fail("smart_resize: invalid factor ", factor, " or pixel range [", min_pixels, ", ", max_pixels,
         "]");
  // spec §4.1 step 1 (h, w are Python ints from here on).
  int64_t h = height, w = width;
  if (h < factor || w < factor) {
    if (h < w) {
      w = python_round(double(factor) / double(h) * double(w));
      h = factor;
    } else {
      h = python_round(double(factor) / double(w) * double(h));
      w = factor;
    }
  } else if (double(std::max(h, w)) / double(std::min(h, w)) > 200) {
    if (h > w)
      h = 200 * w;
    else
      w = 200 * h;
  }
  // Steps 2-3.
  int64_t hb = python_round(double(h) / factor) * factor;
  int64_t wb = python_round(double(w) / factor) * factor;
  if (hb * wb > max_pixels) {
    double beta = std::sqrt(double(h * w) / double(max_pixels));
    hb = int64_t(std::floor(double(h) / beta / factor)) * factor;
    wb = int64_t(std::floor(double(w) / beta / factor)) * factor;
  } else if (hb * wb < min_pixels) {
    double beta = std::sqrt(double(min_pixels) / double(h * w));
    hb = int64_t(std::ceil(double(h) * beta / factor)) * factor;
    wb = int64_t(std::ceil(double(w) * beta / factor)) * factor;
  }
  if (hb <= 0 || wb <= 0 || hb > kMaxImageSide || wb > kMaxImageSide)
    fail("smart_resize: ", height, "x", width, " (factor ", factor, ", pixels [", min_pixels, ", ",
         max_pixels, "]) gives the unusable size ", hb, "x", wb);
  return ImageSize{int(hb), int(wb)};
}

}  // namespace ovis
