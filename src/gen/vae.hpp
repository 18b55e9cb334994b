// The image VAE: diffusers AutoencoderKL as used by Ovis-U1 (SDXL architecture, spec §2.5, §7.11,
// weights §8.4). Every channel count, block count and group count comes from VaeConfig.
// The encoder follows the context's precision; the decoder always runs in fp32, as the
// reference's autocast does (spec §9.1).
#pragma once
#include <memory>

#include "core/tensor.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "ops/ops.hpp"

namespace ovis {

class GroupNormSync;  // gen/vae_tiling.hpp

class Vae {
 public:
  // Binds "visual_generator.vae.*". The mid-block attention accepts the diffusers names
  // (to_q/to_k/to_v/to_out.0) and the legacy ones (query/key/value/proj_attn), each either as
  // Linear [C,C] or as 1x1 conv [C,C,1,1] (spec §8.4 caveat).
  static Vae load(WeightBinder& wb, const ops::Context& ctx, const VaeConfig& cfg);

  // z: latents [latent_channels, h, w], already divided by scaling_factor (and shifted back if
  // the config has a shift) -> image [3, f·h, f·w] in about [-1, 1], not clamped.
  // f = 2^(number of upsamplers) = 8 for the SDXL layout.
  Tensor decode(const Tensor& z) const;

  // Tiled decode (src/gen/vae_tiling.cpp) for images too large for decode(). post_quant_conv,
  // conv_in, the mid block (with its global attention) and the resnets of up_blocks[0] run on the
  // whole latent grid exactly as in decode(); everything from the first upsampler on (the "tail")
  // runs per tile of `tile` latent pixels, neighbours sharing at least `overlap`, blended
  // linearly outside the reach of each tile's zero padding (tail_context()).
  // The approximation is GroupNorm, which needs whole-image statistics. By default every tile
  // normalises with its own statistics, as diffusers' tiled_decode (one pass over the tiles).
  // `exact_norms` = k > 0 first runs k statistics passes, pass p running every tile only up to
  // the tail's GroupNorm p, so that the first k GroupNorms use exact whole-image statistics.
  // With k = tail_group_norms() (19 for SDXL; cost ≈ 10 tail passes) and overlap >=
  // 2·ceil(tail_context()) + 1 (15 for SDXL) the result equals decode() up to rounding; the
  // deviation shrinks slowly with k in between (it is dominated by the last, full-resolution
  // GroupNorms). Measured deviations are in tests/test_vae.cpp.
  // Memory: the global part, O(latent area · 512 ch), plus one tile.
  Tensor decode_tiled(const Tensor& z, int tile = 64, int overlap = 16, int exact_norms = 0) const;
  // Number of GroupNorms in the tiled part of the decoder.
  int tail_group_norms() const;
  // How far (in latent pixels) zero padding at a tile border reaches into the upsampling part's
  // output: the sum of the 3x3 convolutions' radii, each divided by its upscale (6.25 for SDXL).
  double tail_context() const;

  // decode() (exact reference semantics) while h·w <= kAutoTileMaxLatentArea, i.e. up to
  // 1024×1024 output (peak ≈ 3 GB at the real channel counts, f32: ~0.6 GB of cached conv
  // weights and buffers plus ~2.4 KB per output pixel); above that decode_tiled() with whole-image
  // GroupNorm statistics (exact_norms = tail_group_norms()), which equals decode() up to rounding.
  static constexpr int64_t kAutoTileMaxLatentArea = 128 * 128;
  Tensor decode_auto(const Tensor& z) const;

  // x: image [3, H, W] in [-1, 1], H and W multiples of the downscale factor (8).
  // Returns the posterior mean and logvar [latent_channels, H/8, W/8], not scaled; logvar is
  // clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution stores it.
  struct Posterior {
    Tensor mean, logvar;
  };
  Posterior encode(const Tensor& x) const;

  const VaeConfig& config() const;
  // The (fp32) context the decoder runs on; decode() returns tensors on its device.
  const ops::Context& decode_context() const;
  // Pixel size of one latent pixel (8 for the SDXL layout).
  int64_t upscale_factor() const;

 private:
  struct Weights;  // vae.cpp
  explicit Vae(std::shared_ptr<const Weights> w) : w_(std::move(w)) {}
  // decode() = decode_tail(decode_head(z)); the split is where tiling starts.
  Tensor decode_head(const Tensor& z) const;
  Tensor decode_tail(Tensor features, GroupNormSync* sync = nullptr) const;
  void check_latents(const Tensor& z, const char* who) const;

  std::shared_ptr<const Weights> w_;
};

}  // namespace ovis
