// The rectified-flow timestep schedule (spec §7.4: get_schedule, time_shift, get_lin_function).
#pragma once
#include <cstdint>
#include <vector>

#include "io/config.hpp"

namespace ovis {

// steps+1 float32 timesteps from 1 down to 0. With cfg.timestep_shift the linspace is warped by
// mu = m·n_img_tokens + b, the line through (256, base_shift) and (4096, max_shift) (not clamped).
std::vector<float> flow_schedule(int steps, int64_t n_img_tokens, const DitConfig& cfg);

}  // namespace ovis
