// Sinusoidal timestep embedding of the DiT (spec §7.6 step 3, FLUX `timestep_embedding`).
#pragma once
#include "core/tensor.hpp"
#include "ops/ops.hpp"

namespace ovis {

// [1, dim]: [cos(t'·f_i) for i < dim/2, sin(t'·f_i) for i < dim/2] (cos first), with t' = 1000·t
// and f_i = exp(−ln(10000)·i/(dim/2)), all in float32. In BF16 precision the reference's bf16
// rounding is reproduced: t is rounded to bf16 and 1000·t is rounded to bf16 again (§9.1).
Tensor timestep_embedding(const ops::Context& c, float t, int dim);

}  // namespace ovis
