// Seeded Gaussian noise for the initial latents (spec §7.3, §9.6).
//
// The reference draws CUDA torch.randn in bf16 (PyTorch's Philox offset scheme), which this port
// does not reproduce bit-exactly. Instead the generator is fixed and documented here, so a seed
// gives the same image on every machine and thread count:
//   * Philox4x32-10 (Salmon et al., SC'11) with key = (seed & 0xffffffff, seed >> 32).
//   * Output block b (elements 4b .. 4b+3 of the flat tensor) uses counter (b lo, b hi, 0, 0).
//   * Each pair of 32-bit words (r0, r1) gives two normals by Box–Muller in double precision:
//       u1 = (r0 + 0.5)·2⁻³², u2 = r1·2⁻³², ρ = sqrt(−2 ln u1), z0 = ρ cos 2πu2, z1 = ρ sin 2πu2.
//   * Values are rounded to bf16, as the reference's noise is bf16 (the goldens' injected noise
//     is bf16-representable too).
// Element i depends only on (seed, i): the result does not depend on the number of threads.
#pragma once
#include <array>
#include <cstdint>

#include "core/philox.hpp"
#include "core/tensor.hpp"

namespace ovis {

// Standard normal samples, f32 storage with bf16-representable values.
Tensor gaussian_noise(const Shape& shape, uint64_t seed);

}  // namespace ovis
