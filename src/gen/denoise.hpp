// Denoising: Euler integration of the rectified flow with classifier-free guidance (spec §7.5).
// (Token selection for the LLM is llm/token_sampler.)
#pragma once
#include <functional>
#include <vector>

#include "core/tensor.hpp"
#include "gen/yak_dit.hpp"

namespace ovis {

// Called after each Euler step with (steps done, total steps). It may throw to cancel.
using StepCallback = std::function<void(int step, int total)>;
// Optional view of each step (tests, debugging): the latents fed to step `step` (0-based), the
// raw DiT velocities in call order (t2i: v_cond, v_uncond; edit: v_cond, v_no_both, v_no_txt)
// and the guided velocity the step applied.
using StepInspector =
    std::function<void(int step, const Tensor& latents_in, const std::vector<Tensor>& velocities,
                       const Tensor& guided)>;

// Both run the refiner once per condition (YakDiT::prepare_text), then the DiT blocks once per
// condition and step, and combine the velocities with ops::guided_euler_step_ (in BF16
// precision the latent arithmetic is rounded to bf16 after every op, as the reference's bf16
// tensors are).
//
// Text-to-image, 2 DiT forwards per step (cond, uncond): v = v_u + cfg·(v_c − v_u).
// img [N, in_ch] the packed initial noise; ts the schedule (steps + 1 values, flow_schedule).
// Each step: img += (t_next − t_cur)·v. Returns the final packed latents.
Tensor denoise_t2i(const YakDiT& dit, const Tensor& img, const Tensor& img_ids, const Tensor& cond,
                   const Tensor& uncond, const std::vector<float>& ts, float cfg,
                   const StepCallback& on_step = {}, const StepInspector& inspect = {});

// Editing, 3 DiT forwards per step (§7.5): v_c = DiT(cond_txt, with the cond image),
// v_nb = DiT(no_both, without it), v_nt = DiT(no_txt, with it);
// v = v_nb + img_cfg·(v_nt − v_nb) + txt_cfg·(v_c − v_nt).
// cond_latents [N2, in_ch] (VAE latents of the input, packed), cond_ids [N2, 3] (time axis 1).
Tensor denoise_edit(const YakDiT& dit, const Tensor& img, const Tensor& img_ids,
                    const Tensor& cond_txt, const Tensor& no_txt, const Tensor& no_both,
                    const Tensor& cond_latents, const Tensor& cond_ids,
                    const std::vector<float>& ts, float txt_cfg, float img_cfg,
                    const StepCallback& on_step = {}, const StepInspector& inspect = {});

}  // namespace ovis
