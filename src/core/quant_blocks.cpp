#include "core/quant_blocks.hpp"

#include <algorithm>
#include <cmath>

#include "core/dtype.hpp"

namespace ovis {

namespace {
// std::lround for |v| < 2^31, exactly (v − trunc(v) is exact in float), without the libm call
// that took most of the time of quantizing to Q8_0.
inline int round_half_away(float v) {
  const float t = std::trunc(v);
  return int(t) + (std::fabs(v - t) >= 0.5f ? (v < 0 ? -1 : 1) : 0);
}
}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    const float* v = x + b * kQ8_0Block;
    float amax = 0;
    for (int i = 0; i < kQ8_0Block; ++i) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.0f;
    const float id = d > 0 ? 1.0f / d : 0.0f;
    y[b].d = f32_to_f16(d);
    for (int i = 0; i < kQ8_0Block; ++i) y[b].qs[i] = int8_t(round_half_away(v[i] * id));
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ8_0Block; ++b) {
    const float d = f16_to_f32(x[b].d);
    for (int i = 0; i < kQ8_0Block; ++i) y[b * kQ8_0Block + i] = d * float(x[b].qs[i]);
  }
}

namespace {

constexpr int kSub = 32;  // Q4_K sub-block

// A 4-bit code for v: floor(v + 0.5) clamped to [0, 15], as float (NaN gives 0). This is the
// rounding the quantiser has always used (half away from zero; below 0 everything clamps to 0),
// in a form the compiler vectorizes.
inline float code4(float v) {
  const float r = std::floor(v + 0.5f);
  const float q = r > 0.0f ? r : 0.0f;
  return q < 15.0f ? q : 15.0f;
}

constexpr int kSteps = 21;  // candidate inverse scales (15 + 0.1·step) / (hi − lo), step −10..10
constexpr int kLanes = 24;  // kSteps padded to whole vectors; the padding lanes are never chosen

// Fits x[i] ≈ s·q[i] − m with q in [0, 15], s >= 0, m >= 0, searching around the min/max scale
// and refining each candidate by least squares. Returns s and m.
// The candidates are independent, so each is a lane: every lane sums over i in order, exactly as a
// loop over one candidate at a time would, and the bytes do not depend on the vector width.
void fit_sub_block(const float* x, float* s_out, float* m_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < kSub; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);
  if (hi <= lo) {
    *s_out = 0;
    *m_out = -lo;
    return;
  }
  float iscale[kLanes];
  for (int l = 0; l < kLanes; ++l)
    iscale[l] = (15.0f + 0.1f * float(std::min(l, kSteps - 1) - 10)) / (hi - lo);
  double sx = 0;
  for (int i = 0; i < kSub; ++i) sx += x[i];
  // Least squares per candidate: x ≈ s·q + b over its codes q.
  // Σq and Σq² are integers below 2^13: exact in float.
  float sl[kLanes] = {}, sll[kLanes] = {};
  double slx[kLanes] = {};
  for (int i = 0; i < kSub; ++i) {
    const float d = x[i] - lo;
    const double xi = x[i];
    for (int l = 0; l < kLanes; ++l) {
      const float q = code4(iscale[l] * d);
      sl[l] += q;
      sll[l] += q * q;
      slx[l] += double(q) * xi;
    }
  }
  double s[kLanes], b[kLanes], inv_s[kLanes];
  bool valid[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const double det = kSub * double(sll[l]) - double(sl[l]) * sl[l];
    double sv = det > 0 ? (kSub * slx[l] - sl[l] * sx) / det : 0.0;
    double bv = (sx - sv * sl[l]) / kSub;  // b = −m
    if (bv > 0) {
      bv = 0;
      sv = sll[l] > 0 ? slx[l] / sll[l] : 0;
    }
    valid[l] = l < kSteps && det > 0 && sv >= 0;
    s[l] = valid[l] ? sv : 0.0;
    b[l] = valid[l] ? bv : 0.0;
    inv_s[l] = s[l] > 0 ? 1.0 / s[l] : 0.0;
  }
  // Squared error of each candidate with the values quantized again by its fitted s and b.
  double err[kLanes] = {};
  for (int i = 0; i < kSub; ++i) {
    const double xi = x[i];
    for (int l = 0; l < kLanes; ++l) {
      const double q = code4(float((xi - b[l]) * inv_s[l]));
      const double e = s[l] * q + b[l] - xi;
      err[l] += e * e;
    }
  }
  float best_err = INFINITY, best_s = (hi - lo) / 15.0f, best_m = -lo;
  for (int l = 0; l < kSteps; ++l) {
    if (valid[l] && err[l] < best_err) {
      best_err = float(err[l]);
      best_s = float(s[l]);
      best_m = float(-b[l]);
    }
  }
  *s_out = best_s;
  *m_out = best_m;
}

}  // namespace

void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ4_KBlock; ++b) {
    const float* v = x + b * kQ4_KBlock;
    float s[8], m[8];
    float smax = 0, mmax = 0;
    for (int j = 0; j < 8; ++j) {
      fit_sub_block(v + j * kSub, &s[j], &m[j]);
      smax = std::max(smax, s[j]);
      mmax = std::max(mmax, m[j]);
    }
    const float d = f16_to_f32(f32_to_f16(smax / 63.0f));
    const float dmin = f16_to_f32(f32_to_f16(mmax / 63.0f));
    int sc[8], mn[8];
    for (int j = 0; j < 8; ++j) {
      sc[j] = d > 0 ? std::clamp(int(std::lround(s[j] / d)), 0, 63) : 0;
      mn[j] = dmin > 0 ? std::clamp(int(std::lround(m[j] / dmin)), 0, 63) : 0;
    }
    BlockQ4_K& o = y[b];
    o.d = f32_to_f16(d);
    o.dmin = f32_to_f16(dmin);
    for (int j = 0; j < 4; ++j) {
      o.scales[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
      o.scales[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
      o.scales[j + 8] = uint8_t((sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4));
    }
    // The values again with the scales as stored (6-bit, fp16), so rounding error does not add up.
    uint8_t q[kQ4_KBlock];
    for (int j = 0; j < 8; ++j) {
      const float ds = d * float(sc[j]), dm = dmin * float(mn[j]);
      for (int i = 0; i < kSub; ++i) {
        const float t = ds > 0 ? (v[j * kSub + i] + dm) / ds : 0.0f;
        q[j * kSub + i] = uint8_t(code4(t));
      }
    }
    for (int c = 0; c < 4; ++c)
      for (int i = 0; i < 32; ++i)
        o.qs[c * 32 + i] = uint8_t(q[c * 64 + i] | (q[c * 64 + 32 + i] << 4));
  }
}

void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQ4_KBlock; ++b) {
    const float d = f16_to_f32(x[b].d), dmin = f16_to_f32(x[b].dmin);
    float* o = y + b * kQ4_KBlock;
    for (int c = 0; c < 4; ++c) {
      int sc0, m0, sc1, m1;
      q4k_scale_min(x[b].scales, 2 * c, &sc0, &m0);
      q4k_scale_min(x[b].scales, 2 * c + 1, &sc1, &m1);
      const float d0 = d * float(sc0), o0 = dmin * float(m0);
      const float d1 = d * float(sc1), o1 = dmin * float(m1);
      const uint8_t* q = x[b].qs + 32 * c;
      for (int i = 0; i < 32; ++i) {
        o[64 * c + i] = d0 * float(q[i] & 0x0f) - o0;
        o[64 * c + 32 + i] = d1 * float(q[i] >> 4) - o1;
      }
    }
  }
}

}  // namespace ovis
