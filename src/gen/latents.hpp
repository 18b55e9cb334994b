// Latent layout of the DiT (spec §7.3): 2×2 patch packing and 3-axis position ids.
#pragma once
#include <cstdint>

#include "core/tensor.hpp"
#include "ops/ops.hpp"

namespace ovis {

// z [C, H8, W8] (H8, W8 even) -> [(H8/2)(W8/2), 4C] with
// out[h·(W8/2) + w, c·4 + ph·2 + pw] = z[c, 2h + ph, 2w + pw].
Tensor pack_latents(const ops::Context& c, const Tensor& z);
// The exact inverse: packed [(H8/2)(W8/2), 4C] -> [C, H8, W8].
Tensor unpack_latents(const ops::Context& c, const Tensor& packed, int64_t C, int64_t H8,
                      int64_t W8);
// Position ids [h16·w16, 3], row h·w16 + w = (time_axis, h, w). time_axis is 0 for the noisy
// image and 1 for the edit conditioning image (§7.3); text tokens use (0, 0, 0).
Tensor latent_ids(const ops::Context& c, int64_t h16, int64_t w16, float time_axis);

}  // namespace ovis
