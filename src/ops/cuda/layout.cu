// Layout ops: slices, concatenation, gathers, permutes, crops and tile blending. Plain copies are
// 2-D memcpys on the stream (graph-capturable); conversions and index maps are kernels.
#include <algorithm>

#include "core/error.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"
#include "ops/cuda/quant.hpp"

namespace ovis::ops::cuda {

namespace {

char* at(const Tensor& t, int64_t elem) {
  return static_cast<char*>(t.device_ptr()) + size_t(elem) * dtype_size(t.dtype());
}

// Rows `ids` of table [V, D] -> y [n, D]; an id outside [0, V) gives zeros.
template <class Id>
__global__ void gather_rows_kernel(Elems table, const Id* ids, int64_t V, int64_t D, MutElems y,
                                   int64_t n) {
  OVIS_GRID_STRIDE(i, n * D) {
    const int64_t r = i / D, d = i % D;
    const int64_t id = int64_t(ids[r]);
    store(y, i, id >= 0 && id < V ? load(table, id * D + d) : 0.0f);
  }
}

__global__ void mean_rows_kernel(Elems x, int64_t M, int64_t D, MutElems y) {
  OVIS_GRID_STRIDE(d, D) {
    double s = 0;
    for (int64_t m = 0; m < M; ++m) s += load(x, m * D + d);
    store(y, d, float(s / double(M)));
  }
}

struct PermuteMap {
  int64_t dims[6];     // output dims, padded with leading 1s
  int64_t strides[6];  // input element stride of each output dim
};

__global__ void permute_kernel(const char* x, char* y, int64_t n, PermuteMap m, int es) {
  OVIS_GRID_STRIDE(o, n) {
    int64_t r = o, off = 0;
    for (int k = 5; k >= 0; --k) {
      off += (r % m.dims[k]) * m.strides[k];
      r /= m.dims[k];
    }
    const char* s = x + off * es;
    char* d = y + o * es;
    for (int b = 0; b < es; ++b) d[b] = s[b];
  }
}

// y[c, i, j] = x[c, y0 + i, x0 + j]
__global__ void crop_kernel(Elems x, int64_t H, int64_t W, int64_t y0, int64_t x0, int64_t h,
                            int64_t w, MutElems y, int64_t n) {
  OVIS_GRID_STRIDE(i, n) {
    const int64_t c = i / (h * w), r = (i / w) % h, col = i % w;
    store(y, i, load(x, (c * H + y0 + r) * W + x0 + col));
  }
}

__global__ void accumulate_tile_kernel(MutElems out, int64_t H, int64_t W, Elems tile, int64_t th,
                                       int64_t tw, int64_t y0, int64_t x0, const float* wy,
                                       const float* wx, int64_t n) {
  OVIS_GRID_STRIDE(i, n) {
    const int64_t c = i / (th * tw), r = (i / tw) % th, col = i % tw;
    const int64_t o = (c * H + y0 + r) * W + x0 + col;
    store(out, o, load(out, o) + wy[r] * wx[col] * load(tile, i));
  }
}

__global__ void upsample2x_kernel(Elems x, int64_t H, int64_t W, MutElems y, int64_t n) {
  OVIS_GRID_STRIDE(i, n) {
    const int64_t W2 = 2 * W, H2 = 2 * H;
    const int64_t c = i / (H2 * W2), r = (i / W2) % H2, col = i % W2;
    store(y, i, load(x, (c * H + r / 2) * W + col / 2));
  }
}

__global__ void grid_positions_kernel(float* o, int64_t h, int64_t w, float t) {
  OVIS_GRID_STRIDE(i, h * w) {
    o[3 * i] = t;
    o[3 * i + 1] = float(i / w);
    o[3 * i + 2] = float(i % w);
  }
}

// dst rows [p, p + n) = src, p read from the device.
__global__ void copy_rows_at_kernel(Elems src, MutElems dst, int64_t n, int64_t row, int64_t rows,
                                    const float* pos) {
  const int64_t p = position(pos);
  if (p < 0 || p * row + n > rows * row) return;  // validated by the caller's bookkeeping
  OVIS_GRID_STRIDE(i, n) store(dst, p * row + i, load(src, i));
}

}  // namespace

Tensor CudaBackend::slice_cols(const Context&, const Tensor& x, int64_t begin, int64_t end) {
  const int64_t N = x.dim(-1), M = N ? x.numel() / N : 0, W = end - begin;
  const size_t es = dtype_size(x.dtype());
  Shape s = x.shape();
  s.back() = W;
  Tensor y = empty(s, x.dtype());
  if (M && W)
    OVIS_CU(cudaMemcpy2DAsync(y.device_ptr(), W * es, at(x, begin), N * es, W * es, M,
                              cudaMemcpyDeviceToDevice, stream()));
  return y;
}

Tensor CudaBackend::concat_cols(const Context&, const std::vector<Tensor>& parts) {
  const int64_t W0 = parts[0].dim(-1);
  const int64_t M = W0 ? parts[0].numel() / W0 : 0;
  const size_t es = dtype_size(parts[0].dtype());
  int64_t N = 0;
  for (const auto& p : parts) N += p.dim(-1);
  Shape s = parts[0].shape();
  s.back() = N;
  Tensor y = empty(s, parts[0].dtype());
  int64_t off = 0;
  for (const auto& p : parts) {
    const int64_t W = p.dim(-1);
    if (M && W)
      OVIS_CU(cudaMemcpy2DAsync(at(y, off), N * es, p.device_ptr(), W * es, W * es, M,
                                cudaMemcpyDeviceToDevice, stream()));
    off += W;
  }
  return y;
}

Tensor CudaBackend::concat_rows(const Context&, const std::vector<Tensor>& parts) {
  Shape s = parts[0].shape();
  int64_t rows = 0;
  for (const auto& p : parts) rows += p.dim(0);
  s[0] = rows;
  Tensor y = empty(s, parts[0].dtype());
  char* o = static_cast<char*>(y.device_ptr());
  for (const auto& p : parts) {
    if (p.nbytes())
      OVIS_CU(cudaMemcpyAsync(o, p.device_ptr(), p.nbytes(), cudaMemcpyDeviceToDevice, stream()));
    o += p.nbytes();
  }
  return y;
}

Tensor CudaBackend::embedding(const Context& c, const Tensor& table,
                              const std::vector<int64_t>& ids) {
  const int64_t n = int64_t(ids.size()), D = table.dim(1);
  Tensor y = empty({n, D}, c.act_dtype());
  if (n == 0 || D == 0) return y;
  Tensor host = Tensor::empty({n}, DType::I64);
  std::copy(ids.begin(), ids.end(), host.mutable_data<int64_t>());
  const Tensor dev = host.to(device());
  if (dtype_is_quantized(table.dtype())) {
    gather_dequantized_rows(*this, table, dev.device_ptr(), true, n, mut_elems(y));
    return y;
  }
  gather_rows_kernel<<<blocks_for(n * D), kThreads, 0, stream()>>>(
      elems(table), static_cast<const int64_t*>(dev.device_ptr()), table.dim(0), D, mut_elems(y),
      n);
  OVIS_CU_LAUNCHED("embedding");
  return y;
}

Tensor CudaBackend::embedding(const Context& c, const Tensor& table, const Tensor& ids) {
  const int64_t n = ids.numel(), D = table.dim(1);
  Tensor y = empty({n, D}, c.act_dtype());
  if (n == 0 || D == 0) return y;
  if (dtype_is_quantized(table.dtype())) {
    gather_dequantized_rows(*this, table, ids.device_ptr(), false, n, mut_elems(y));
    return y;
  }
  gather_rows_kernel<<<blocks_for(n * D), kThreads, 0, stream()>>>(
      elems(table), static_cast<const int32_t*>(ids.device_ptr()), table.dim(0), D, mut_elems(y),
      n);
  OVIS_CU_LAUNCHED("embedding (device ids)");
  return y;
}

Tensor CudaBackend::mean_rows(const Context& c, const Tensor& x) {
  const int64_t D = x.dim(-1), M = D ? x.numel() / D : 0;
  Tensor y = empty({1, D}, c.act_dtype());
  if (D == 0) return y;
  mean_rows_kernel<<<blocks_for(D), kThreads, 0, stream()>>>(elems(x), M, D, mut_elems(y));
  OVIS_CU_LAUNCHED("mean_rows");
  return y;
}

Tensor CudaBackend::permute(const Context&, const Tensor& x, const std::vector<int>& perm) {
  const int nd = x.ndim();
  Shape out_shape(size_t(nd), 0);
  for (int i = 0; i < nd; ++i) out_shape[size_t(i)] = x.dim(perm[size_t(i)]);
  Tensor y = empty(out_shape, x.dtype());
  if (y.numel() == 0) return y;
  std::vector<int64_t> in_stride(size_t(nd), 1);
  for (int i = nd - 2; i >= 0; --i) in_stride[size_t(i)] = in_stride[size_t(i) + 1] * x.dim(i + 1);
  PermuteMap m{};
  for (int i = 0; i < 6; ++i) {
    const int j = i - (6 - nd);
    m.dims[i] = j >= 0 ? out_shape[size_t(j)] : 1;
    m.strides[i] = j >= 0 ? in_stride[size_t(perm[size_t(j)])] : 0;
  }
  permute_kernel<<<blocks_for(y.numel()), kThreads, 0, stream()>>>(
      static_cast<const char*>(x.device_ptr()), static_cast<char*>(y.device_ptr()), y.numel(), m,
      int(dtype_size(x.dtype())));
  OVIS_CU_LAUNCHED("permute");
  return y;
}

Tensor CudaBackend::crop(const Context&, const Tensor& x, int64_t y0, int64_t y1, int64_t x0,
                         int64_t x1) {
  const int64_t C = x.dim(0), h = y1 - y0, w = x1 - x0;
  Tensor y = empty({C, h, w}, x.dtype());
  const int64_t n = y.numel();
  if (n == 0) return y;
  crop_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(elems(x), x.dim(1), x.dim(2), y0, x0, h, w,
                                                        mut_elems(y), n);
  OVIS_CU_LAUNCHED("crop");
  return y;
}

void CudaBackend::accumulate_tile_(const Context&, Tensor& out, const Tensor& tile, int64_t y0,
                                   int64_t x0, const std::vector<float>& wy,
                                   const std::vector<float>& wx) {
  const int64_t n = tile.numel();
  if (n == 0) return;
  const Tensor wyd = Tensor::from_vector(wy, {int64_t(wy.size())}).to(device());
  const Tensor wxd = Tensor::from_vector(wx, {int64_t(wx.size())}).to(device());
  accumulate_tile_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(
      mut_elems(out), out.dim(1), out.dim(2), elems(tile), tile.dim(1), tile.dim(2), y0, x0,
      static_cast<const float*>(wyd.device_ptr()), static_cast<const float*>(wxd.device_ptr()), n);
  OVIS_CU_LAUNCHED("accumulate_tile_");
}

Tensor CudaBackend::upsample_nearest2x(const Context& c, const Tensor& x) {
  const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2);
  Tensor y = empty({C, 2 * H, 2 * W}, x.dtype());
  const int64_t n = y.numel();
  if (n == 0) return y;
  upsample2x_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(elems(x), H, W, mut_elems(y), n);
  OVIS_CU_LAUNCHED("upsample_nearest2x");
  return y;
}

Tensor CudaBackend::grid_positions(const Context&, int64_t h, int64_t w, float t) {
  Tensor ids = empty({h * w, 3}, DType::F32);
  grid_positions_kernel<<<blocks_for(h * w), kThreads, 0, stream()>>>(
      static_cast<float*>(ids.device_ptr()), h, w, t);
  OVIS_CU_LAUNCHED("grid_positions");
  return ids;
}

void CudaBackend::copy_rows_at_(const Context&, Tensor& dst, const Tensor& src, const Tensor& pos) {
  const int64_t n = src.numel();
  if (n == 0) return;
  const int64_t row = dst.numel() / dst.dim(0);
  copy_rows_at_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(
      elems(src), mut_elems(dst), n, row, dst.dim(0), static_cast<const float*>(pos.device_ptr()));
  OVIS_CU_LAUNCHED("copy_rows_at_");
}

}  // namespace ovis::ops::cuda
