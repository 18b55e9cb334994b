#include "vision/pos_embed.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "vision/merge_order.hpp"

namespace ovis {

namespace {

// Per output index: the 4 clamped source taps and their weights along one axis. The arithmetic
// is float, in the order of ATen's compute_indices_weights_cubic / get_cubic_upsample_coefficients.
struct CubicTaps {
  int64_t idx[4];
  float w[4];
};

constexpr float kCubicA = -0.75f;

// The Keys kernel for |x| <= 1 and for 1 < |x| < 2.
inline float cubic_near(float x) {
  return ((kCubicA + 2) * x - (kCubicA + 3)) * x * x + 1;
}
inline float cubic_far(float x) {
  return ((kCubicA * x - 5 * kCubicA) * x + 8 * kCubicA) * x - 4 * kCubicA;
}

std::vector<CubicTaps> cubic_taps(int64_t in, int64_t out) {
  std::vector<CubicTaps> taps(static_cast<size_t>(out));
  const float scale = float(in) / float(out);
  for (int64_t d = 0; d < out; ++d) {
    const float src = scale * (float(d) + 0.5f) - 0.5f;
    const int64_t i0 = std::min(int64_t(std::floor(src)), in - 1);
    const float t = std::min(std::max(src - float(i0), 0.0f), 1.0f);
    CubicTaps& c = taps[size_t(d)];
    c.w[0] = cubic_far(t + 1);
    c.w[1] = cubic_near(t);
    const float u = 1 - t;
    c.w[2] = cubic_near(u);
    c.w[3] = cubic_far(u + 1);
    for (int k = 0; k < 4; ++k) c.idx[k] = std::clamp<int64_t>(i0 - 1 + k, 0, in - 1);
  }
  return taps;
}

}  // namespace

Tensor bicubic_resize_grid(const Tensor& grid, int src_h, int src_w, int dst_h, int dst_w) {
  OVIS_ASSERT(grid.dtype() == DType::F32 && grid.ndim() == 2);
  OVIS_ASSERT(grid.dim(0) == int64_t(src_h) * src_w && dst_h > 0 && dst_w > 0);
  const int64_t C = grid.dim(1);
  const std::vector<CubicTaps> ty = cubic_taps(src_h, dst_h), tx = cubic_taps(src_w, dst_w);
  Tensor out = Tensor::empty({int64_t(dst_h) * dst_w, C});
  const float* src = grid.f32();
  float* dst = out.mutable_f32();
  // ATen sums the width taps first, then weights those 4 partial rows by the height taps.
#pragma omp parallel
  {
    std::vector<float> row(static_cast<size_t>(C));
#pragma omp for schedule(static)
    for (int64_t y = 0; y < dst_h; ++y) {
      const CubicTaps& cy = ty[size_t(y)];
      for (int64_t x = 0; x < dst_w; ++x) {
        const CubicTaps& cx = tx[size_t(x)];
        float* o = dst + (y * dst_w + x) * C;
        for (int i = 0; i < 4; ++i) {
          const float* r = src + cy.idx[i] * src_w * C;
          const float* s0 = r + cx.idx[0] * C;
          const float* s1 = r + cx.idx[1] * C;
          const float* s2 = r + cx.idx[2] * C;
          const float* s3 = r + cx.idx[3] * C;
          float* t = row.data();
          for (int64_t c = 0; c < C; ++c)
            t[c] = s0[c] * cx.w[0] + s1[c] * cx.w[1] + s2[c] * cx.w[2] + s3[c] * cx.w[3];
          if (i == 0)
            for (int64_t c = 0; c < C; ++c) o[c] = t[c] * cy.w[0];
          else
            for (int64_t c = 0; c < C; ++c) o[c] += t[c] * cy.w[i];
        }
      }
    }
  }
  return out;
}

Tensor interpolate_pos_embed(const Tensor& pos_embed, int side, int grid_h, int grid_w,
                             int stride) {
  const int64_t C = pos_embed.dim(-1);
  OVIS_ASSERT(pos_embed.numel() == int64_t(side) * side * C);
  const Tensor grid = (pos_embed.dtype() == DType::F32 ? pos_embed : pos_embed.to_f32())
                          .reshape({int64_t(side) * side, C});
  const Tensor resized = bicubic_resize_grid(grid, side, side, grid_h, grid_w);
  const std::vector<PatchPos> pos = merge_order_positions(grid_h, grid_w, stride);
  Tensor out = Tensor::empty({int64_t(pos.size()), C});
  for (size_t s = 0; s < pos.size(); ++s)
    std::memcpy(out.mutable_f32() + int64_t(s) * C,
                resized.f32() + (int64_t(pos[s].row) * grid_w + pos[s].col) * C, size_t(C) * 4);
  return out;
}

}  // namespace ovis
