#include "gen/latents.hpp"

#include "core/error.hpp"

namespace ovis {

Tensor pack_latents(const Tensor& z) {
  if (z.ndim() != 3 || z.dim(1) % 2 != 0 || z.dim(2) % 2 != 0)
    fail("pack_latents: expected latents [C, H8, W8] with even H8, W8, got ", shape_str(z.shape()));
  const int64_t C = z.dim(0), H8 = z.dim(1), W8 = z.dim(2), h16 = H8 / 2, w16 = W8 / 2;
  Tensor zf = z.dtype() == DType::F32 ? z : z.to_f32();
  Tensor out = Tensor::empty({h16 * w16, 4 * C});
  const float* s = zf.f32();
  float* o = out.f32();
  for (int64_t h = 0; h < h16; ++h)
    for (int64_t w = 0; w < w16; ++w)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t ph = 0; ph < 2; ++ph)
          for (int64_t pw = 0; pw < 2; ++pw)
            o[(h * w16 + w) * 4 * C + c * 4 + ph * 2 + pw] =
                s[(c * H8 + 2 * h + ph) * W8 + 2 * w + pw];
  return out;
}

Tensor unpack_latents(const Tensor& packed, int64_t C, int64_t H8, int64_t W8) {
  const int64_t h16 = H8 / 2, w16 = W8 / 2;
  if (H8 % 2 != 0 || W8 % 2 != 0 || packed.ndim() != 2 || packed.dim(0) != h16 * w16 ||
      packed.dim(1) != 4 * C)
    fail("unpack_latents: packed ", shape_str(packed.shape()), " does not match [", C, ", ", H8,
         ", ", W8, "]");
  Tensor out = Tensor::empty({C, H8, W8});
  const float* s = packed.f32();
  float* o = out.f32();
  for (int64_t h = 0; h < h16; ++h)
    for (int64_t w = 0; w < w16; ++w)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t ph = 0; ph < 2; ++ph)
          for (int64_t pw = 0; pw < 2; ++pw)
            o[(c * H8 + 2 * h + ph) * W8 + 2 * w + pw] =
                s[(h * w16 + w) * 4 * C + c * 4 + ph * 2 + pw];
  return out;
}

Tensor latent_ids(int64_t h16, int64_t w16, float time_axis) {
  if (h16 <= 0 || w16 <= 0) fail("latent_ids: token grid ", h16, "x", w16, " must be positive");
  Tensor ids = Tensor::empty({h16 * w16, 3});
  float* o = ids.f32();
  for (int64_t h = 0; h < h16; ++h)
    for (int64_t w = 0; w < w16; ++w) {
      float* r = o + (h * w16 + w) * 3;
      r[0] = time_axis;
      r[1] = float(h);
      r[2] = float(w);
    }
  return ids;
}

}  // namespace ovis
