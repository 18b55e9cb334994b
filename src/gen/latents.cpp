#include "gen/latents.hpp"

#include "core/error.hpp"

namespace ovis {

Tensor pack_latents(const ops::Context& c, const Tensor& z) {
  if (z.ndim() != 3 || z.dim(1) % 2 != 0 || z.dim(2) % 2 != 0)
    fail("pack_latents: expected latents [C, H8, W8] with even H8, W8, got ", shape_str(z.shape()));
  const int64_t C = z.dim(0), h16 = z.dim(1) / 2, w16 = z.dim(2) / 2;
  // [C, h16, 2, w16, 2] -> [h16, w16, C, 2, 2]
  return ops::permute(c, z.reshape({C, h16, 2, w16, 2}), {1, 3, 0, 2, 4})
      .reshape({h16 * w16, 4 * C});
}

Tensor unpack_latents(const ops::Context& c, const Tensor& packed, int64_t C, int64_t H8,
                      int64_t W8) {
  const int64_t h16 = H8 / 2, w16 = W8 / 2;
  if (H8 % 2 != 0 || W8 % 2 != 0 || packed.ndim() != 2 || packed.dim(0) != h16 * w16 ||
      packed.dim(1) != 4 * C)
    fail("unpack_latents: packed ", shape_str(packed.shape()), " does not match [", C, ", ", H8,
         ", ", W8, "]");
  // [h16, w16, C, 2, 2] -> [C, h16, 2, w16, 2]
  return ops::permute(c, packed.reshape({h16, w16, C, 2, 2}), {2, 0, 3, 1, 4}).reshape({C, H8, W8});
}

Tensor latent_ids(const ops::Context& c, int64_t h16, int64_t w16, float time_axis) {
  if (h16 <= 0 || w16 <= 0) fail("latent_ids: token grid ", h16, "x", w16, " must be positive");
  return ops::grid_positions(c, h16, w16, time_axis);
}

}  // namespace ovis
