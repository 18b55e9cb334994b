// conv2d with a fused prologue, computed in row bands: a 'same' kxk convolution of P(x), where
// P is nothing, GroupNorm+SiLU or a nearest 2x upsample, is evaluated band by band, each band
// building only its rows of P(x) (plus the kernel's halo) and convolving them. Neither P(x) nor
// oneDNN's blocked copies of input and output ever exist for the whole image, so the peak memory
// of a VAE convolution is its input and output plus one band instead of about four full
// activations. Results equal the unbanded computation (same per-pixel arithmetic).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"

namespace ovis::ops::cpu {

namespace {

constexpr int64_t kParallelMin = 1 << 15;

}  // namespace

struct ConvBands {
  // y = conv(P(x)) where P(x) is [C, H, W] and make_band(a, b) returns its rows [a, b) as a
  // contiguous [C, b - a, W].
  template <class MakeBand>
  static Tensor run(CpuBackend& be, const Context& c, int64_t C, int64_t H, int64_t W,
                    const ConvWeights& w, MakeBand make_band) {
    const int64_t O = w.w.dim(0), halo = w.w.dim(2) / 2;
    const int64_t rows =
        std::clamp<int64_t>(int64_t(be.conv_band_bytes()) / std::max<int64_t>(C * W * 4, 1), 1, H);
    Conv2dParams p;
    p.pad_left = p.pad_right = int(halo);
    if (rows >= H) {
      p.pad_top = p.pad_bottom = int(halo);
      return be.conv2d_plain(c, make_band(0, H), w, p);
    }
    Tensor y = Tensor::empty({O, H, W});
    float* yp = y.mutable_f32();
    for (int64_t r0 = 0; r0 < H; r0 += rows) {
      const int64_t r1 = std::min(H, r0 + rows);
      const int64_t a = std::max<int64_t>(0, r0 - halo), e = std::min(H, r1 + halo);
      p.pad_top = int(halo - (r0 - a));
      p.pad_bottom = int(halo - (e - r1));
      const Tensor out = be.conv2d_plain(c, make_band(a, e), w, p);
      OVIS_ASSERT(out.dim(1) == r1 - r0 && out.dim(2) == W);
      const float* op = out.f32();
      const int64_t n = (r1 - r0) * W;
#pragma omp parallel for schedule(static) if (O * n > kParallelMin)
      for (int64_t o = 0; o < O; ++o) std::memcpy(yp + (o * H + r0) * W, op + o * n, size_t(n) * 4);
    }
    return y;
  }
};

Tensor CpuBackend::conv2d(const Context& c, const Tensor& x, const ConvWeights& w,
                          const Conv2dParams& p, const ConvPrologue& pro) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  const int64_t k = w.w.dim(2), halo = k / 2;
  const bool same = p.stride == 1 && k == w.w.dim(3) && k % 2 == 1 && p.pad_top == halo &&
                    p.pad_bottom == halo && p.pad_left == halo && p.pad_right == halo;
  if (!same) return conv2d_plain(c, x, w, p);
  const float* xp = x.f32();
  switch (pro.kind) {
    case ConvPrologue::Kind::None:
      return ConvBands::run(*this, c, C, H, W, w, [&](int64_t a, int64_t e) {
        if (a == 0 && e == H) return x;
        Tensor band = Tensor::empty({C, e - a, W});
        float* bp = band.mutable_f32();
        const int64_t n = (e - a) * W;
#pragma omp parallel for schedule(static) if (C * n > kParallelMin)
        for (int64_t ch = 0; ch < C; ++ch)
          std::memcpy(bp + ch * n, xp + (ch * H + a) * W, size_t(n) * 4);
        return band;
      });
    case ConvPrologue::Kind::GroupNormSilu: {
      const int64_t groups = pro.stats->dim(0), cpg = C / groups;
      const float* st = pro.stats->f32();
      const float* nw = pro.norm_w->f32();
      const float* nb = pro.norm_b->f32();
      return ConvBands::run(*this, c, C, H, W, w, [&](int64_t a, int64_t e) {
        Tensor band = Tensor::empty({C, e - a, W});
        float* bp = band.mutable_f32();
        const int64_t n = (e - a) * W;
#pragma omp parallel for schedule(static) if (C * n > kParallelMin)
        for (int64_t ch = 0; ch < C; ++ch) {
          const int64_t g = ch / cpg;
          // Same arithmetic as group_norm followed by silu_.
          const float m = st[2 * g], scale = st[2 * g + 1] * nw[ch], shift = nb[ch];
          const float* src = xp + (ch * H + a) * W;
          float* dst = bp + ch * n;
          for (int64_t i = 0; i < n; ++i) {
            const float v = (src[i] - m) * scale + shift;
            dst[i] = v / (1.0f + std::exp(-v));
          }
        }
        return band;
      });
    }
    case ConvPrologue::Kind::Upsample2x:
      return ConvBands::run(*this, c, C, 2 * H, 2 * W, w, [&](int64_t a, int64_t e) {
        Tensor band = Tensor::empty({C, e - a, 2 * W});
        float* bp = band.mutable_f32();
#pragma omp parallel for collapse(2) schedule(static) if (C * (e - a) * W > kParallelMin)
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t r = a; r < e; ++r) {
            const float* src = xp + (ch * H + r / 2) * W;
            float* dst = bp + (ch * (e - a) + r - a) * 2 * W;
            for (int64_t i = 0; i < W; ++i) dst[2 * i] = dst[2 * i + 1] = src[i];
          }
        return band;
      });
  }
  fail("internal error: unknown conv prologue");
}

}  // namespace ovis::ops::cpu
