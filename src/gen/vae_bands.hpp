// Stride-1 convolutions of the VAE computed in bands of output rows. Each band's input (a few
// rows plus the kernel halo) is produced on the fly by a prologue (copy, GroupNorm + SiLU, or
// nearest ×2 upsampling) and convolved by ops::conv2d; so neither the prologue's output nor
// oneDNN's blocked-layout copies of input and output ever exist for the whole image. Peak memory
// of a VAE conv is its input and output plus one band, instead of about four full activations.
// Results equal the unbanded ops (same per-pixel arithmetic).
#pragma once
#include <cstddef>
#include <vector>

#include "core/tensor.hpp"

namespace ovis::vae_bands {

// Per-group normalisation constants of x [C, H, W], computed exactly as ops::group_norm does
// (double sums, two passes): y = (x - mean[g]) · inv_std[g] · w[c] + b[c].
struct GroupStats {
  std::vector<float> mean, inv_std;
};
GroupStats group_stats(const Tensor& x, int groups, float eps);

// conv(silu(group_norm(x))) with a kxk kernel (k odd), padding k/2.
Tensor norm_silu_conv(const Tensor& x, const GroupStats& s, const Tensor& norm_w,
                      const Tensor& norm_b, const Tensor& w, const Tensor& b);
// conv(nearest_2x(x)), kxk kernel, padding k/2: output [O, 2H, 2W].
Tensor upsample_conv(const Tensor& x, const Tensor& w, const Tensor& b);
// conv(x), kxk kernel, padding k/2.
Tensor conv(const Tensor& x, const Tensor& w, const Tensor& b);

// Target size of one band's input in bytes (default 32 MiB); tests shrink it to force many bands.
void set_band_bytes(size_t bytes);
size_t band_bytes();

}  // namespace ovis::vae_bands
