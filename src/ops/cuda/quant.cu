// Q8_0 / Q4_K weights decoded on the device (quant.hpp). Values are dequantized exactly as the
// CPU's reference does (core/quant_blocks.cpp: d·q, and d·sc·q − dmin·m with d·sc and dmin·m
// formed first), in fp32.
#include "core/error.hpp"
#include "core/quant_blocks.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/quant.hpp"

namespace ovis::ops::cuda {

namespace {

constexpr int kQ8Bytes = int(sizeof(BlockQ8_0));  // 34
constexpr int kQ4Bytes = int(sizeof(BlockQ4_K));  // 144

__device__ __forceinline__ float f16_at(const uint8_t* p) {
  // Blocks are 2-byte aligned (34- and 144-byte blocks in rows of whole blocks).
  return __half2float(*reinterpret_cast<const __half*>(p));
}

// Sub-block j's 6-bit scale and min (core/quant_blocks.hpp q4k_scale_min, on the device).
__device__ __forceinline__ void scale_min(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 63;
    m = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Value k of a row of Q8_0 or Q4_K blocks.
__device__ __forceinline__ float value_at(const uint8_t* row, bool q4, int64_t k) {
  if (!q4) {
    const uint8_t* b = row + (k >> 5) * kQ8Bytes;
    return f16_at(b) * float(int8_t(b[2 + (k & 31)]));
  }
  const uint8_t* b = row + (k >> 8) * kQ4Bytes;
  const int in = int(k & 255), c = in >> 6, hi = (in >> 5) & 1, l = in & 31;
  int sc, m;
  scale_min(b + 4, 2 * c + hi, sc, m);
  const uint8_t q = b[16 + 32 * c + l];
  const float ds = f16_at(b) * float(sc), dm = f16_at(b + 2) * float(m);
  return ds * float(hi ? q >> 4 : q & 0x0f) - dm;
}

__device__ __forceinline__ float xin(Elems x, int64_t i, bool round_x) {
  const float v = load(x, i);
  return round_x ? round_to_bf16(v) : v;
}

// One warp per output row n. Q8_0: each lane takes 4 values of one of 4 blocks per step (128
// values, the warp reads 4 consecutive blocks).
template <int M>
__global__ void gemv_q8_0_kernel(const uint8_t* __restrict__ w, int64_t N, int64_t K, Elems x,
                                 bool round_x, const float* __restrict__ bias, MutElems y) {
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= N) return;
  const int64_t nb = K / kQ8_0Block;
  const uint8_t* row = w + n * nb * kQ8Bytes;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  const int j = (lane & 7) * 4;
  for (int64_t b = lane >> 3; b < nb; b += 4) {
    const uint8_t* blk = row + b * kQ8Bytes;
    const float d = f16_at(blk);
    const float q0 = float(int8_t(blk[2 + j])), q1 = float(int8_t(blk[3 + j])),
                q2 = float(int8_t(blk[4 + j])), q3 = float(int8_t(blk[5 + j]));
    const int64_t k = b * kQ8_0Block + j;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const int64_t i = int64_t(m) * K + k;
      acc[m] += d * (xin(x, i, round_x) * q0 + xin(x, i + 1, round_x) * q1 +
                     xin(x, i + 2, round_x) * q2 + xin(x, i + 3, round_x) * q3);
    }
  }
  store_warp_rows<M>(acc, lane, n, N, bias, y);
}

// Q4_K: per super-block, lane l takes byte l of each 32-byte quarter of qs: values 64c + l (low
// nibble, sub-block 2c) and 64c + 32 + l (high nibble, sub-block 2c + 1).
template <int M>
__global__ void gemv_q4_k_kernel(const uint8_t* __restrict__ w, int64_t N, int64_t K, Elems x,
                                 bool round_x, const float* __restrict__ bias, MutElems y) {
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= N) return;
  const int64_t nb = K / kQ4_KBlock;
  const uint8_t* row = w + n * nb * kQ4Bytes;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + b * kQ4Bytes;
    const float d = f16_at(blk), dmin = f16_at(blk + 2);
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      int sc0, m0, sc1, m1;
      scale_min(blk + 4, 2 * c, sc0, m0);
      scale_min(blk + 4, 2 * c + 1, sc1, m1);
      const uint8_t q = blk[16 + 32 * c + lane];
      const float w0 = d * float(sc0) * float(q & 0x0f) - dmin * float(m0);
      const float w1 = d * float(sc1) * float(q >> 4) - dmin * float(m1);
      const int64_t k = b * kQ4_KBlock + 64 * c + lane;
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const int64_t i = int64_t(m) * K + k;
        acc[m] += xin(x, i, round_x) * w0 + xin(x, i + 32, round_x) * w1;
      }
    }
  }
  store_warp_rows<M>(acc, lane, n, N, bias, y);
}

// out[i, k] = deq(w)[row(i), k]; row(i) = r0 + i, or ids[i] when ids is set (an id outside
// [0, V) gives zeros, like the float gather).
template <class Id>
__global__ void dequantize_rows_kernel(const uint8_t* __restrict__ w, bool q4, int64_t row_bytes,
                                       int64_t V, int64_t K, int64_t r0, const Id* ids,
                                       int64_t rows, MutElems out) {
  OVIS_GRID_STRIDE(i, rows * K) {
    const int64_t r = i / K, k = i % K;
    const int64_t src = ids ? int64_t(ids[r]) : r0 + r;
    store(out, i, src >= 0 && src < V ? value_at(w + src * row_bytes, q4, k) : 0.0f);
  }
}

bool is_q4(const Tensor& w) {
  if (w.dtype() == DType::Q4_K) return true;
  if (w.dtype() == DType::Q8_0) return false;
  fail("internal error: a quantized-weight kernel on ", dtype_name(w.dtype()));
}

const uint8_t* blocks_of(const Tensor& w) {
  const auto* p = static_cast<const uint8_t*>(w.device_ptr());
  if (reinterpret_cast<uintptr_t>(p) % 2 != 0)
    fail("internal error: ", dtype_name(w.dtype()), " blocks at an odd device address");
  return p;
}

}  // namespace

void quant_gemv(CudaBackend& be, const Tensor& w, const Tensor& x, bool round_x, const float* bias,
                Tensor& y, int64_t M) {
  const int64_t N = w.dim(0), K = w.dim(1);
  const bool q4 = is_q4(w);
  const uint8_t* wp = blocks_of(w);
  const int rows_per_block = kThreads / 32;
  const unsigned blocks = unsigned((N + rows_per_block - 1) / rows_per_block);
  const cudaStream_t s = be.stream();
  const Elems xe = elems(x);
  const MutElems ye = mut_elems(y);
#define OVIS_QUANT_GEMV(MM)                                                               \
  (q4 ? gemv_q4_k_kernel<MM><<<blocks, kThreads, 0, s>>>(wp, N, K, xe, round_x, bias, ye) \
      : gemv_q8_0_kernel<MM><<<blocks, kThreads, 0, s>>>(wp, N, K, xe, round_x, bias, ye))
  switch (M) {
    case 1:
      OVIS_QUANT_GEMV(1);
      break;
    case 2:
      OVIS_QUANT_GEMV(2);
      break;
    case 3:
      OVIS_QUANT_GEMV(3);
      break;
    case 4:
      OVIS_QUANT_GEMV(4);
      break;
    default:
      fail("internal error: quant_gemv for ", M, " rows");
  }
#undef OVIS_QUANT_GEMV
  OVIS_CU_LAUNCHED("quantized gemv");
}

void dequantize_rows(CudaBackend& be, const Tensor& w, int64_t r0, int64_t rows, MutElems out) {
  const int64_t K = w.dim(1);
  if (rows <= 0 || K == 0) return;
  dequantize_rows_kernel<int64_t><<<blocks_for(rows * K), kThreads, 0, be.stream()>>>(
      blocks_of(w), is_q4(w), int64_t(dtype_bytes(w.dtype(), K)), w.dim(0), K, r0, nullptr, rows,
      out);
  OVIS_CU_LAUNCHED("dequantize rows");
}

void gather_dequantized_rows(CudaBackend& be, const Tensor& table, const void* ids, bool ids_i64,
                             int64_t n, MutElems out) {
  const int64_t K = table.dim(1);
  if (n <= 0 || K == 0) return;
  const int64_t row_bytes = int64_t(dtype_bytes(table.dtype(), K));
  if (ids_i64)
    dequantize_rows_kernel<int64_t><<<blocks_for(n * K), kThreads, 0, be.stream()>>>(
        blocks_of(table), is_q4(table), row_bytes, table.dim(0), K, 0,
        static_cast<const int64_t*>(ids), n, out);
  else
    dequantize_rows_kernel<int32_t><<<blocks_for(n * K), kThreads, 0, be.stream()>>>(
        blocks_of(table), is_q4(table), row_bytes, table.dim(0), K, 0,
        static_cast<const int32_t*>(ids), n, out);
  OVIS_CU_LAUNCHED("gather dequantized rows");
}

}  // namespace ovis::ops::cuda
