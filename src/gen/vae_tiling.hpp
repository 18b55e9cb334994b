// Tiled VAE decoding support (Vae::decode_tiled lives in vae_tiling.cpp): the tile layout, the
// blend weights, and GroupNorm statistics shared by all tiles of one image.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/tensor.hpp"
#include "ops/ops.hpp"

namespace ovis {

struct TileSpan {
  int64_t begin = 0, end = 0;  // [begin, end) in latent pixels
};

// Tiles of length min(tile, extent) covering [0, extent), evenly spaced so that neighbours share
// at least `overlap` pixels; all tiles have the same length (one tile if extent <= tile).
// Requires tile >= 1 and 0 <= overlap < tile.
std::vector<TileSpan> plan_tiles(int64_t extent, int64_t tile, int64_t overlap);

// Blend weights along one axis for tile k, at `scale` output pixels per latent pixel (length
// (end-begin)·scale). With O = overlap·scale and m = min(margin, (O-1)/2), the weight at distance
// d from a border shared with a neighbour is 0 for d < m (pixels that the tile's zero padding
// reaches), rises linearly over the next O - 2m pixels and is 1 beyond; image borders get 1.
// Two neighbours overlapping by exactly O sum to 1 at every pixel. The caller normalises by the
// summed weights, which are > 0 everywhere for plan_tiles layouts: every pixel lies within
// (tile - overlap)/2 of some tile's centre, i.e. at least O/2 > m from that tile's borders.
std::vector<float> tile_blend_weights(const std::vector<TileSpan>& spans, size_t k, int64_t scale,
                                      int64_t overlap, int64_t margin);

// GroupNorm statistics for an image decoded tile by tile. GroupNorms are identified by their
// call order within a tile. The first exact() of them normalise with whole-image statistics, the
// others with the tile's own (diffusers' tiled_decode behaviour). A collecting pass extends the
// exact prefix by one: every tile runs up to GroupNorm exact(), whose input is then exact, adds
// its sums over the pixels the tile owns (owned parts partition the image) and stops
// (stopped()); finish_pass() turns the sums into the whole-image mean and variance.
class GroupNormSync {
 public:
  struct Region {
    int64_t crop_h = 0, crop_w = 0;          // the tile's size in latent pixels
    int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;  // owned latent rows/cols, relative to the tile
  };
  void set_collecting(bool on) { collecting_ = on; }
  void begin_tile(const Region& r);
  // The statistics the tile's next GroupNorm normalises x with ([groups, 2] (mean, inv_std), as
  // ops::group_norm_stats).
  Tensor stats(const ops::Context& c, const Tensor& x, int groups, float eps);
  // True once a collecting tile has passed GroupNorm exact(): the caller abandons the tile.
  bool stopped() const { return stopped_; }
  void finish_pass();
  size_t exact() const { return exact_.size(); }

 private:
  Region region_;
  size_t layer_ = 0;
  bool collecting_ = false, stopped_ = false;
  Tensor moments_;             // [groups, 3] F64: Σx, Σx², count over the owned pixels so far
  std::vector<Tensor> exact_;  // per exact GroupNorm: its whole-image moments
};

}  // namespace ovis
