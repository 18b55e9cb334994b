#include "gen/denoise.hpp"

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {

void check_schedule(const std::vector<float>& ts) {
  if (ts.size() < 2) fail("denoise: the schedule needs at least 2 timesteps, got ", ts.size());
}

// A private copy of the latents (rounded to bf16 in BF16 precision: the reference's latents are
// bf16).
Tensor own_latents(const ops::Context& c, const Tensor& x) {
  Tensor y = x.dtype() == c.act_dtype() ? x.clone() : ops::cast(c, x, c.act_dtype());
  if (c.precision == ops::Precision::BF16) ops::round_bf16_(c, y);
  return y;
}

// dt = t_next − t_cur is a Python double in the reference and enters the tensor op as a float32
// scalar.
float step_dt(const std::vector<float>& ts, int i) {
  return float(double(ts[size_t(i) + 1]) - double(ts[size_t(i)]));
}

}  // namespace

Tensor denoise_t2i(const YakDiT& dit, const Tensor& noise, const Tensor& img_ids,
                   const Tensor& cond, const Tensor& uncond, const std::vector<float>& ts,
                   float cfg, const StepCallback& on_step, const StepInspector& inspect) {
  check_schedule(ts);
  const ops::Context& c = dit.context();
  Tensor img = own_latents(c, noise);
  const DitText text_c = dit.prepare_text(cond), text_u = dit.prepare_text(uncond);
  const int total = int(ts.size()) - 1;
  Tensor guided;
  for (int i = 0; i < total; ++i) {
    const float t_cur = ts[size_t(i)];
    const std::vector<Tensor> v{dit.forward(img, img_ids, text_c, t_cur),
                                dit.forward(img, img_ids, text_u, t_cur)};
    const Tensor latents_in = inspect ? img.clone() : Tensor();
    if (inspect) guided = ops::empty(c, img.shape(), img.dtype());
    ops::guided_euler_step_(c, img, v, ops::Guidance::T2I, cfg, 0.0f, step_dt(ts, i),
                            inspect ? &guided : nullptr);
    if (inspect) inspect(i, latents_in, v, guided);
    if (on_step) on_step(i + 1, total);
  }
  return img;
}

Tensor denoise_edit(const YakDiT& dit, const Tensor& noise, const Tensor& img_ids,
                    const Tensor& cond_txt, const Tensor& no_txt, const Tensor& no_both,
                    const Tensor& cond_latents, const Tensor& cond_ids,
                    const std::vector<float>& ts, float txt_cfg, float img_cfg,
                    const StepCallback& on_step, const StepInspector& inspect) {
  check_schedule(ts);
  const ops::Context& c = dit.context();
  Tensor img = own_latents(c, noise);
  const Tensor cond_img = own_latents(c, cond_latents);
  const DitText text_c = dit.prepare_text(cond_txt), text_nb = dit.prepare_text(no_both),
                text_nt = dit.prepare_text(no_txt);
  const int total = int(ts.size()) - 1;
  Tensor guided;
  for (int i = 0; i < total; ++i) {
    const float t_cur = ts[size_t(i)];
    const std::vector<Tensor> v{dit.forward(img, img_ids, text_c, t_cur, &cond_img, &cond_ids),
                                dit.forward(img, img_ids, text_nb, t_cur),
                                dit.forward(img, img_ids, text_nt, t_cur, &cond_img, &cond_ids)};
    const Tensor latents_in = inspect ? img.clone() : Tensor();
    if (inspect) guided = ops::empty(c, img.shape(), img.dtype());
    ops::guided_euler_step_(c, img, v, ops::Guidance::Edit, txt_cfg, img_cfg, step_dt(ts, i),
                            inspect ? &guided : nullptr);
    if (inspect) inspect(i, latents_in, v, guided);
    if (on_step) on_step(i + 1, total);
  }
  return img;
}

}  // namespace ovis
