#include "gen/sampler.hpp"

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {

// The reference's latent arithmetic is bf16, rounded after every elementwise op (§7.5, §9.1).
// In BF16 precision that rounding is reproduced; in F32 (the goldens) every op is float32.
// Each op is rounded on its own (no fused multiply-add), like the reference's separate kernels.
struct LatentMath {
  bool bf16 = ops::precision() == ops::Precision::BF16;
  float r(float v) const {
    volatile float s = v;
    return bf16 ? round_bf16(s) : s;
  }
};

void check_same(const Tensor& a, const Tensor& b, const char* what) {
  if (a.numel() != b.numel() || a.dtype() != DType::F32 || b.dtype() != DType::F32)
    fail("internal error: ", what, ": velocities ", shape_str(a.shape()), " and ",
         shape_str(b.shape()), " differ");
}

// img += dt·v; dt = t_next − t_cur is a Python double in the reference and enters the tensor op
// as a float32 scalar.
void euler_update(Tensor& img, const Tensor& v, double dt, const LatentMath& lm) {
  check_same(img, v, "euler_update");
  float* x = img.f32();
  const float* vp = v.f32();
  const float step = float(dt);
  for (int64_t i = 0; i < img.numel(); ++i) x[i] = lm.r(x[i] + lm.r(step * vp[i]));
}

void check_schedule(const std::vector<float>& ts) {
  if (ts.size() < 2) fail("denoise: the schedule needs at least 2 timesteps, got ", ts.size());
}

// A private f32 copy (bf16-rounded in BF16 precision: the reference's latents are bf16).
Tensor own_latents(const Tensor& x, const LatentMath& lm) {
  Tensor y = x.dtype() == DType::F32 ? x.clone() : x.to_f32();
  if (lm.bf16)
    for (int64_t i = 0; i < y.numel(); ++i) y.f32()[i] = round_bf16(y.f32()[i]);
  return y;
}

}  // namespace

Tensor guide_t2i(const Tensor& v_cond, const Tensor& v_uncond, float cfg) {
  check_same(v_cond, v_uncond, "guide_t2i");
  const LatentMath lm;
  Tensor v = Tensor::empty(v_cond.shape());
  const float *c = v_cond.f32(), *u = v_uncond.f32();
  float* o = v.f32();
  for (int64_t j = 0; j < v.numel(); ++j) {
    const float cj = lm.r(c[j]), uj = lm.r(u[j]);
    o[j] = lm.r(uj + lm.r(cfg * lm.r(cj - uj)));
  }
  return v;
}

Tensor guide_edit(const Tensor& v_cond, const Tensor& v_no_both, const Tensor& v_no_txt,
                  float txt_cfg, float img_cfg) {
  check_same(v_cond, v_no_both, "guide_edit");
  check_same(v_cond, v_no_txt, "guide_edit");
  const LatentMath lm;
  Tensor v = Tensor::empty(v_cond.shape());
  const float *c = v_cond.f32(), *nb = v_no_both.f32(), *nt = v_no_txt.f32();
  float* o = v.f32();
  for (int64_t j = 0; j < v.numel(); ++j) {
    const float cj = lm.r(c[j]), nbj = lm.r(nb[j]), ntj = lm.r(nt[j]);
    const float img_term = lm.r(img_cfg * lm.r(ntj - nbj));
    const float txt_term = lm.r(txt_cfg * lm.r(cj - ntj));
    o[j] = lm.r(lm.r(nbj + img_term) + txt_term);
  }
  return v;
}

Tensor denoise_t2i(const YakDiT& dit, Tensor img, const Tensor& img_ids, const Tensor& cond,
                   const Tensor& uncond, const std::vector<float>& ts, float cfg,
                   const StepCallback& on_step, const StepInspector& inspect) {
  check_schedule(ts);
  const LatentMath lm;
  img = own_latents(img, lm);
  const DitText text_c = dit.prepare_text(cond), text_u = dit.prepare_text(uncond);
  const int total = int(ts.size()) - 1;
  for (int i = 0; i < total; ++i) {
    const float t_cur = ts[size_t(i)], t_next = ts[size_t(i) + 1];
    const Tensor vc = dit.forward(img, img_ids, text_c, t_cur);
    const Tensor vu = dit.forward(img, img_ids, text_u, t_cur);
    if (inspect) inspect(i, img, {vc, vu});
    euler_update(img, guide_t2i(vc, vu, cfg), double(t_next) - double(t_cur), lm);
    if (on_step) on_step(i + 1, total);
  }
  return img;
}

Tensor denoise_edit(const YakDiT& dit, Tensor img, const Tensor& img_ids, const Tensor& cond_txt,
                    const Tensor& no_txt, const Tensor& no_both, const Tensor& cond_latents,
                    const Tensor& cond_ids, const std::vector<float>& ts, float txt_cfg,
                    float img_cfg, const StepCallback& on_step, const StepInspector& inspect) {
  check_schedule(ts);
  const LatentMath lm;
  img = own_latents(img, lm);
  const Tensor cond_img = own_latents(cond_latents, lm);
  const DitText text_c = dit.prepare_text(cond_txt), text_nb = dit.prepare_text(no_both),
                text_nt = dit.prepare_text(no_txt);
  const int total = int(ts.size()) - 1;
  for (int i = 0; i < total; ++i) {
    const float t_cur = ts[size_t(i)], t_next = ts[size_t(i) + 1];
    const Tensor vc = dit.forward(img, img_ids, text_c, t_cur, &cond_img, &cond_ids);
    const Tensor vnb = dit.forward(img, img_ids, text_nb, t_cur);
    const Tensor vnt = dit.forward(img, img_ids, text_nt, t_cur, &cond_img, &cond_ids);
    if (inspect) inspect(i, img, {vc, vnb, vnt});
    euler_update(img, guide_edit(vc, vnb, vnt, txt_cfg, img_cfg), double(t_next) - double(t_cur),
                 lm);
    if (on_step) on_step(i + 1, total);
  }
  return img;
}

}  // namespace ovis
