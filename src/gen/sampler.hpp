// Euler sampling of the rectified flow with classifier-free guidance (spec §7.5).
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.hpp"
#include "gen/yak_dit.hpp"

namespace ovis {

// Called after each Euler step with (steps done, total steps). It may throw to cancel.
using StepCallback = std::function<void(int step, int total)>;
// Optional view of each step (tests, debugging): the latents fed to step `step` (0-based) and the
// raw DiT velocities in call order (t2i: v_cond, v_uncond; edit: v_cond, v_no_both, v_no_txt).
using StepInspector =
    std::function<void(int step, const Tensor& latents_in, const std::vector<Tensor>& velocities)>;

// Guidance combinations, elementwise in float32 (rounded to bf16 after every op in BF16
// precision, as the reference's bf16 tensors are):
// t2i: v = v_u + cfg·(v_c − v_u).
Tensor guide_t2i(const Tensor& v_cond, const Tensor& v_uncond, float cfg);
// edit: v = v_nb + img_cfg·(v_nt − v_nb) + txt_cfg·(v_c − v_nt).
Tensor guide_edit(const Tensor& v_cond, const Tensor& v_no_both, const Tensor& v_no_txt,
                  float txt_cfg, float img_cfg);

// Both samplers run the refiner once per condition (YakDiT::prepare_text), then the DiT blocks
// once per condition and step.
//
// Text-to-image, 2 DiT forwards per step (cond, uncond), guided by guide_t2i.
// img [N, in_ch] the packed initial noise; ts the schedule (steps + 1 values, flow_schedule).
// Each step: img += (t_next − t_cur)·v. Returns the final packed latents.
Tensor denoise_t2i(const YakDiT& dit, Tensor img, const Tensor& img_ids, const Tensor& cond,
                   const Tensor& uncond, const std::vector<float>& ts, float cfg,
                   const StepCallback& on_step = {}, const StepInspector& inspect = {});

// Editing, 3 DiT forwards per step (§7.5): v_c = DiT(cond_txt, with the cond image),
// v_nb = DiT(no_both, without it), v_nt = DiT(no_txt, with it); guided by guide_edit.
// cond_latents [N2, in_ch] (VAE latents of the input, packed), cond_ids [N2, 3] (time axis 1).
Tensor denoise_edit(const YakDiT& dit, Tensor img, const Tensor& img_ids, const Tensor& cond_txt,
                    const Tensor& no_txt, const Tensor& no_both, const Tensor& cond_latents,
                    const Tensor& cond_ids, const std::vector<float>& ts, float txt_cfg,
                    float img_cfg, const StepCallback& on_step = {},
                    const StepInspector& inspect = {});

}  // namespace ovis
