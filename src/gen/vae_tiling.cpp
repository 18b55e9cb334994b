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

vae_bands::GroupStats GroupNormSync::stats(const Tensor& x, int groups, float eps) {
  OVIS_ASSERT(!stopped_);
  const size_t l = layer_++;
  if (l < mean_.size()) {
    OVIS_ASSERT(mean_[l].size() == size_t(groups));
    vae_bands::GroupStats st;
    for (int g = 0; g < groups; ++g) {
      // As ops::group_norm: float(1 / sqrt(var + eps)) and float(mean).
      st.inv_std.push_back(float(1.0 / std::sqrt(var_[l][g] + eps)));
      st.mean.push_back(float(mean_[l][g]));
    }
    return st;
  }
  if (collecting_ && l == mean_.size()) {
    const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2), cpg = C / groups;
    OVIS_ASSERT(C % groups == 0 && H % region_.crop_h == 0 && W % region_.crop_w == 0);
    if (sums_.empty()) sums_.assign(size_t(2 * groups), 0.0);
    OVIS_ASSERT(sums_.size() == size_t(2 * groups));
    const int64_t sy = H / region_.crop_h, sx = W / region_.crop_w;
    const int64_t y0 = region_.y0 * sy, y1 = region_.y1 * sy, x0 = region_.x0 * sx,
                  x1 = region_.x1 * sx;
    const float* xp = x.f32();
#pragma omp parallel for schedule(static) if (C * H * W > (1 << 15))
    for (int64_t g = 0; g < groups; ++g) {
      double sum = 0, sq = 0;
      for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (int64_t y = y0; y < y1; ++y) {
          const float* row = xp + (c * H + y) * W;
          for (int64_t i = x0; i < x1; ++i) {
            sum += row[i];
            sq += double(row[i]) * row[i];
          }
        }
      sums_[2 * g] += sum;
      sums_[2 * g + 1] += sq;
    }
    count_ += double(cpg * (y1 - y0) * (x1 - x0));
    stopped_ = true;
  }
  return vae_bands::group_stats(x, groups, eps);
}

void GroupNormSync::finish_pass() {
  OVIS_ASSERT(count_ > 0);
  std::vector<double> mean, var;
  for (size_t g = 0; g < sums_.size() / 2; ++g) {
    const double m = sums_[2 * g] / count_;
    mean.push_back(m);
    var.push_back(std::max(0.0, sums_[2 * g + 1] / count_ - m * m));
  }
  mean_.push_back(std::move(mean));
  var_.push_back(std::move(var));
  sums_.clear();
  count_ = 0;
}

namespace {

// Channels x rows x cols of x [C, H, W] as a contiguous tensor.
Tensor crop(const Tensor& x, const TileSpan& rows, const TileSpan& cols) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const int64_t h = rows.end - rows.begin, w = cols.end - cols.begin;
  Tensor out = Tensor::empty({C, h, w});
  const float* src = x.f32();
  float* dst = out.f32();
#pragma omp parallel for schedule(static) if (C * h * w > (1 << 15))
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(src + (c * H + rows.begin + y) * W + cols.begin, w, dst + (c * h + y) * w);
  return out;
}

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
        decode_tail(crop(features, rows[i], cols[j]), &sync);
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

  const int64_t C = config().out_channels, H = h * f, W = w * f;
  Tensor out = Tensor::zeros({C, H, W});
  float* op = out.f32();
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < cols.size(); ++j) {
      sync.begin_tile(region(i, j));
      const Tensor img = decode_tail(crop(features, rows[i], cols[j]), &sync);
      const int64_t th = img.dim(1), tw = img.dim(2), y0 = rows[i].begin * f,
                    x0 = cols[j].begin * f;
      OVIS_ASSERT(th == int64_t(wy[i].size()) && tw == int64_t(wx[j].size()));
      const float* ip = img.f32();
#pragma omp parallel for collapse(2) schedule(static) if (C * th * tw > (1 << 15))
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < th; ++y) {
          const float a = wy[i][y];
          const float* src = ip + (c * th + y) * tw;
          float* dst = op + (c * H + y0 + y) * W + x0;
          for (int64_t x = 0; x < tw; ++x) dst[x] += a * wx[j][x] * src[x];
        }
    }
    // The weight field is the product of the per-axis sums (the tiles form a grid).
#pragma omp parallel for collapse(2) schedule(static) if (C * H * W > (1 << 15))
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y) {
      float* row = op + (c * H + y) * W;
      for (int64_t x = 0; x < W; ++x) row[x] /= sum_y[y] * sum_x[x];
    }
  return out;
}

}  // namespace ovis
