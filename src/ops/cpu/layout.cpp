// Layout ops: slicing, concatenation, embedding rows, permutes, crops and tile blending.
#include <algorithm>
#include <cstring>

#include "core/error.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/kernels/quant.hpp"

namespace ovis::ops::cpu {

namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

Tensor CpuBackend::slice_cols(const Context&, const Tensor& x, int64_t begin, int64_t end) {
  const int64_t N = x.dim(-1), M = x.numel() / std::max<int64_t>(N, 1), W = end - begin;
  const size_t es = dtype_size(x.dtype());
  Shape s = x.shape();
  s.back() = W;
  Tensor y = Tensor::empty(s, x.dtype());
  const char* xp = static_cast<const char*>(x.raw());
  char* yp = static_cast<char*>(y.mutable_raw());
  for (int64_t m = 0; m < M; ++m) std::memcpy(yp + m * W * es, xp + (m * N + begin) * es, W * es);
  return y;
}

Tensor CpuBackend::concat_cols(const Context&, const std::vector<Tensor>& parts) {
  const int64_t M = parts[0].numel() / std::max<int64_t>(parts[0].dim(-1), 1);
  const size_t es = dtype_size(parts[0].dtype());
  int64_t N = 0;
  for (const auto& p : parts) N += p.dim(-1);
  Shape s = parts[0].shape();
  s.back() = N;
  Tensor y = Tensor::empty(s, parts[0].dtype());
  char* yp = static_cast<char*>(y.mutable_raw());
  int64_t off = 0;
  for (const auto& p : parts) {
    const int64_t W = p.dim(-1);
    const char* pp = static_cast<const char*>(p.raw());
    for (int64_t m = 0; m < M; ++m) std::memcpy(yp + (m * N + off) * es, pp + m * W * es, W * es);
    off += W;
  }
  return y;
}

Tensor CpuBackend::concat_rows(const Context&, const std::vector<Tensor>& parts) {
  Shape s = parts[0].shape();
  int64_t rows = 0;
  for (const auto& p : parts) rows += p.dim(0);
  s[0] = rows;
  Tensor y = Tensor::empty(s, parts[0].dtype());
  char* o = static_cast<char*>(y.mutable_raw());
  for (const auto& p : parts) {
    std::memcpy(o, p.raw(), p.nbytes());
    o += p.nbytes();
  }
  return y;
}

Tensor CpuBackend::embedding(const Context&, const Tensor& table, const std::vector<int64_t>& ids) {
  const int64_t D = table.dim(1);
  Tensor y = Tensor::empty({int64_t(ids.size()), D});
  float* yp = y.mutable_f32();
  if (dtype_is_quantized(table.dtype())) {
    kernels::dequantize_rows(table.dtype(), table.raw(), D, ids.data(), int64_t(ids.size()), yp);
    return y;
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    float* o = yp + int64_t(i) * D;
    const int64_t base = ids[i] * D;
    switch (table.dtype()) {
      case DType::F32:
        std::memcpy(o, table.f32() + base, size_t(D) * 4);
        break;
      case DType::BF16:
        for (int64_t d = 0; d < D; ++d) o[d] = bf16_to_f32(table.data<uint16_t>()[base + d]);
        break;
      default:
        for (int64_t d = 0; d < D; ++d) o[d] = f16_to_f32(table.data<uint16_t>()[base + d]);
        break;
    }
  }
  return y;
}

Tensor CpuBackend::mean_rows(const Context&, const Tensor& x) {
  const int64_t D = x.dim(-1), M = x.numel() / D;
  Tensor y = Tensor::empty({1, D});
  const float* xp = x.f32();
  float* yp = y.mutable_f32();
  for (int64_t d = 0; d < D; ++d) {
    double s = 0;
    for (int64_t m = 0; m < M; ++m) s += xp[m * D + d];
    yp[d] = float(s / double(M));
  }
  return y;
}

Tensor CpuBackend::permute(const Context&, const Tensor& x, const std::vector<int>& perm) {
  // Pad to 6 dims (leading 1s), then walk the output in order with the input's strides.
  const int nd = x.ndim();
  Shape out_shape(static_cast<size_t>(nd), 0);
  for (int i = 0; i < nd; ++i) out_shape[size_t(i)] = x.dim(perm[size_t(i)]);
  Tensor y = Tensor::empty(out_shape, x.dtype());
  std::vector<int64_t> in_stride(size_t(nd), 1);
  for (int i = nd - 2; i >= 0; --i) in_stride[size_t(i)] = in_stride[size_t(i) + 1] * x.dim(i + 1);
  int64_t dims[6], strides[6];
  for (int i = 0; i < 6; ++i) {
    const int j = i - (6 - nd);
    dims[i] = j >= 0 ? out_shape[size_t(j)] : 1;
    strides[i] = j >= 0 ? in_stride[size_t(perm[size_t(j)])] : 0;
  }
  const size_t es = dtype_size(x.dtype());
  const char* xp = static_cast<const char*>(x.raw());
  char* yp = static_cast<char*>(y.mutable_raw());
  const int64_t outer = dims[0] * dims[1] * dims[2] * dims[3];
#pragma omp parallel for schedule(static) if (y.numel() > kParallelMin)
  for (int64_t o = 0; o < outer; ++o) {
    int64_t r = o;
    const int64_t i3 = r % dims[3];
    r /= dims[3];
    const int64_t i2 = r % dims[2];
    r /= dims[2];
    const int64_t i1 = r % dims[1];
    const int64_t i0 = r / dims[1];
    const int64_t base = i0 * strides[0] + i1 * strides[1] + i2 * strides[2] + i3 * strides[3];
    char* dst = yp + size_t(o * dims[4] * dims[5]) * es;
    for (int64_t i4 = 0; i4 < dims[4]; ++i4)
      for (int64_t i5 = 0; i5 < dims[5]; ++i5, dst += es)
        std::memcpy(dst, xp + size_t(base + i4 * strides[4] + i5 * strides[5]) * es, es);
  }
  return y;
}

Tensor CpuBackend::crop(const Context&, const Tensor& x, int64_t y0, int64_t y1, int64_t x0,
                        int64_t x1) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2), h = y1 - y0, w = x1 - x0;
  Tensor out = Tensor::empty({C, h, w});
  const float* src = x.f32();
  float* dst = out.mutable_f32();
#pragma omp parallel for schedule(static) if (C * h * w > kParallelMin)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < h; ++y)
      std::copy_n(src + (c * H + y0 + y) * W + x0, w, dst + (c * h + y) * w);
  return out;
}

void CpuBackend::accumulate_tile_(const Context&, Tensor& out, const Tensor& tile, int64_t y0,
                                  int64_t x0, const std::vector<float>& wy,
                                  const std::vector<float>& wx) {
  const int64_t C = out.dim(0), H = out.dim(1), W = out.dim(2);
  const int64_t th = tile.dim(1), tw = tile.dim(2);
  const float* ip = tile.f32();
  float* op = out.mutable_f32();
#pragma omp parallel for collapse(2) schedule(static) if (C * th * tw > kParallelMin)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < th; ++y) {
      const float a = wy[size_t(y)];
      const float* src = ip + (c * th + y) * tw;
      float* dst = op + (c * H + y0 + y) * W + x0;
      for (int64_t x = 0; x < tw; ++x) dst[x] += a * wx[size_t(x)] * src[x];
    }
}

Tensor CpuBackend::upsample_nearest2x(const Context&, const Tensor& x) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor y = Tensor::empty({C, 2 * H, 2 * W});
  const float* xp = x.f32();
  float* yp = y.mutable_f32();
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < C; ++c)
    for (int64_t h = 0; h < 2 * H; ++h) {
      const float* r = xp + (c * H + h / 2) * W;
      float* o = yp + (c * 2 * H + h) * 2 * W;
      for (int64_t w = 0; w < 2 * W; ++w) o[w] = r[w / 2];
    }
  return y;
}

Tensor CpuBackend::grid_positions(const Context&, int64_t h, int64_t w, float t) {
  Tensor ids = Tensor::empty({h * w, 3});
  float* o = ids.mutable_f32();
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      float* r = o + (i * w + j) * 3;
      r[0] = t;
      r[1] = float(i);
      r[2] = float(j);
    }
  return ids;
}

}  // namespace ovis::ops::cpu
