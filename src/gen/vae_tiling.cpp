#include "gen/vae_tiling.hpp"

#include <algorithm>
#include <cmath>

#include "core/error.hpp"
#include "gen/vae.hpp"
#include "ops/ops.hpp"

namespace ovis {

std::vector<TileSpan> plan_tiles(int64_t extent, int64_t tile, int64_t overlap) {
  OVIS_ASSERT(extent >= 1 && tile >= 1 && overlap >= 0 && overlap < tile);
  if (extent <= tile) return {TileSpan{0, extent}};
  const int64_t stride = tile - overlap;
  const int64_t n = (extent - tile + stride - 1) / stride + 1;
  // Rounded even spacing: every step is <= ceil((extent - tile) / (n - 1)) <= stride.
  std::vector<TileSpan> spans;
  for (int64_t k = 0; k < n; ++k) {
    const int64_t begin = (k * (extent - tile) + (n - 1) / 2) / (n - 1);
    spans.push_back({begin, begin + tile});
  }
  return spans;
}

std::vector<float> tile_blend_weights(const std::vector<TileSpan>& spans, size_t k, int64_t scale,
                                      int64_t overlap, int64_t margin) {
  OVIS_ASSERT(k < spans.size() && margin >= 0);
  const int64_t n = (spans[k].end - spans[k].begin) * scale, o = overlap * scale;
  const int64_t m = o > 0 ? std::min(margin, (o - 1) / 2) : 0, len = o - 2 * m;
  auto ramp = [&](int64_t d) {
    return o > 0 ? std::clamp((float(d - m) + 0.5f) / float(len), 0.0f, 1.0f) : 1.0f;
  };
  std::vector<float> w(size_t(n), 1.0f);
  for (int64_t p = 0; p < n; ++p) {
    if (k > 0) w[p] = std::min(w[p], ramp(p));
    if (k + 1 < spans.size()) w[p] = std::min(w[p], ramp(n - 1 - p));
  }
  return w;
}

void GroupNormSync::begin_tile(const Region& r) {
  OVIS_ASSERT(r.crop_h > 0 && r.crop_w > 0 && 0 <= r.y0 && r.y0 <= r.y1 && r.y1 <= r.crop_h &&
              0 <= r.x0 && r.x0 <= r.x1 && r.x1 <= r.crop_w);
  region_ = r;
  layer_ = 0;
  stopped_ = false;
}

Tensor GroupNormSync::stats(const ops::Context& c, const Tensor& x, int groups, float eps) {
  OVIS_ASSERT(!stopped_);
  const size_t l = layer_++;
  if (l < exact_.size()) return ops::group_norm_stats_from_moments(c, exact_[l], eps);
  if (collecting_ && l == exact_.size()) {
    const int64_t H = x.dim(1), W = x.dim(2);
    OVIS_ASSERT(H % region_.crop_h == 0 && W % region_.crop_w == 0);
    if (!moments_.defined()) moments_ = ops::zeros(c, {groups, 3}, DType::F64);
    OVIS_ASSERT(moments_.numel() == 3 * int64_t(groups));
    const int64_t sy = H / region_.crop_h, sx = W / region_.crop_w;
    ops::group_moments_add_(c, moments_, x, groups, region_.y0 * sy, region_.y1 * sy,
                            region_.x0 * sx, region_.x1 * sx);
    stopped_ = true;
  }
  return ops::group_norm_stats(c, x, groups, eps);
}

void GroupNormSync::finish_pass() {
  OVIS_ASSERT(moments_.defined());
  exact_.push_back(moments_);
  moments_ = Tensor();
}

namespace {

// Latent rows/cols owned by each tile: neighbours split their overlap in the middle.
std::vector<int64_t> ownership_cuts(const std::vector<TileSpan>& spans) {
  std::vector<int64_t> cuts{0};
  for (size_t k = 1; k < spans.size(); ++k) cuts.push_back((spans[k - 1].end + spans[k].begin) / 2);
  cuts.push_back(spans.back().end);
  return cuts;
}

}  // namespace

Tensor Vae::decode_tiled(const Tensor& z, int tile, int overlap, int exact_norms) const {
  check_latents(z, "Vae::decode_tiled");
  if (tile < 1 || overlap < 0 || overlap >= tile || exact_norms < 0)
    fail("Vae::decode_tiled: need tile >= 1, 0 <= overlap < tile and exact_norms >= 0, got tile=",
         tile, " overlap=", overlap, " exact_norms=", exact_norms);
  const ops::Context& c = decode_context();
  // The latent-resolution part (incl. the global mid-block attention) is exact and cheap.
  Tensor features = decode_head(z);
  const int64_t h = features.dim(1), w = features.dim(2), f = upscale_factor();
  const std::vector<TileSpan> rows = plan_tiles(h, tile, overlap),
                              cols = plan_tiles(w, tile, overlap);
  if (rows.size() == 1 && cols.size() == 1) return decode_tail(std::move(features));

  const std::vector<int64_t> cut_y = ownership_cuts(rows), cut_x = ownership_cuts(cols);
  auto region = [&](size_t i, size_t j) {
    GroupNormSync::Region r;
    r.crop_h = rows[i].end - rows[i].begin;
    r.crop_w = cols[j].end - cols[j].begin;
    r.y0 = cut_y[i] - rows[i].begin;
    r.y1 = cut_y[i + 1] - rows[i].begin;
    r.x0 = cut_x[j] - cols[j].begin;
    r.x1 = cut_x[j + 1] - cols[j].begin;
    return r;
  };
  GroupNormSync sync;
  sync.set_collecting(true);
  for (int p = 0; p < std::min(exact_norms, tail_group_norms()); ++p) {
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = 0; j < cols.size(); ++j) {
        sync.begin_tile(region(i, j));
        decode_tail(ops::crop(c, features, rows[i].begin, rows[i].end, cols[j].begin, cols[j].end),
                    &sync);
        OVIS_ASSERT(sync.stopped());
      }
    sync.finish_pass();
  }
  sync.set_collecting(false);

  // Blend outside the reach of each tile's zero padding, so that wherever two tiles are blended
  // both are exact up to their GroupNorm statistics.
  const int64_t margin = int64_t(std::ceil(tail_context() * double(f)));
  std::vector<std::vector<float>> wy(rows.size()), wx(cols.size());
  std::vector<float> sum_y(size_t(h * f), 0.0f), sum_x(size_t(w * f), 0.0f);
  for (size_t i = 0; i < rows.size(); ++i) {
    wy[i] = tile_blend_weights(rows, i, f, overlap, margin);
    for (size_t p = 0; p < wy[i].size(); ++p) sum_y[rows[i].begin * f + p] += wy[i][p];
  }
  for (size_t j = 0; j < cols.size(); ++j) {
    wx[j] = tile_blend_weights(cols, j, f, overlap, margin);
    for (size_t p = 0; p < wx[j].size(); ++p) sum_x[cols[j].begin * f + p] += wx[j][p];
  }
  for (float s : sum_y) OVIS_ASSERT(s > 0.0f);
  for (float s : sum_x) OVIS_ASSERT(s > 0.0f);

  // Blend with weights normalised by their per-axis sums (the tiles form a grid, so the weight
  // field is the product of the two axes' sums).
  const int64_t C = config().out_channels, H = h * f, W = w * f;
  Tensor out = ops::zeros(c, {C, H, W}, c.act_dtype());
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j) {
      sync.begin_tile(region(i, j));
      const Tensor img = decode_tail(
          ops::crop(c, features, rows[i].begin, rows[i].end, cols[j].begin, cols[j].end), &sync);
      const int64_t y0 = rows[i].begin * f, x0 = cols[j].begin * f;
      std::vector<float> ny(wy[i].size()), nx(wx[j].size());
      for (size_t p = 0; p < ny.size(); ++p) ny[p] = wy[i][p] / sum_y[size_t(y0) + p];
      for (size_t p = 0; p < nx.size(); ++p) nx[p] = wx[j][p] / sum_x[size_t(x0) + p];
      ops::accumulate_tile_(c, out, img, y0, x0, ny, nx);
    }
  return out;
}

}  // namespace ovis
