// Attention through cuBLAS, one query tile and head at a time: S = Q·Kᵀ (fp32 out), a softmax
// kernel writing e^(s·scale − max) (rounded to bf16 in BF16 precision, as P enters the second
// product) with the row sums taken before rounding, O = P·V (fp32 out), O / sum. The same
// arithmetic as the CPU backend's sgemm path; the tile is sized so [tile, Lk] scores stay within
// a fixed budget. Used for F32 precision and for head dims the flash kernel does not take.
#include <algorithm>

#include "core/error.hpp"
#include "ops/cuda/attention.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

// Scores of one query tile, f32 (the probabilities take as much again in F32 precision): the
// VAE's 128x128-latent attention runs in 16 tiles of 1024 queries.
constexpr size_t kScoreBytes = size_t(64) << 20;

// Row r of s [rows, ld]: query i = i0 + r sees n = key_end(i) keys. p[r, j] = e^(s·scale − max)
// for j < n, 0 for n <= j < keys; sums[r] = Σ before rounding.
__global__ void softmax_rows_kernel(const float* s, int64_t ld, int64_t keys, int64_t i0,
                                    int64_t lq, int64_t lk, bool causal, float scale, MutElems p,
                                    float* sums) {
  __shared__ float fs[32];
  const int64_t r = blockIdx.x, i = i0 + r;
  int64_t n = lk;
  if (causal) {
    const int64_t e = i + lk - lq + 1;
    n = e < 0 ? 0 : (e > lk ? lk : e);
  }
  const float* row = s + r * ld;
  float mx = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) mx = fmaxf(mx, row[j] * scale);
  mx = block_max(mx, fs);
  float sum = 0.0f;
  for (int64_t j = threadIdx.x; j < keys; j += blockDim.x) {
    const float e = j < n ? expf(row[j] * scale - mx) : 0.0f;
    sum += e;
    store(p, r * ld + j, e);
  }
  sum = block_sum(sum, fs);
  if (threadIdx.x == 0) sums[r] = sum;
}

// out[i0 + r, h·d + c] = o[r, c] / sums[r] (0 when the row saw no key).
__global__ void normalize_kernel(const float* o, const float* sums, int64_t rows, int64_t d,
                                 MutElems out, int64_t ld_out, int64_t col0, int64_t row0) {
  OVIS_GRID_STRIDE(t, rows * d) {
    const int64_t r = t / d, c = t % d;
    const float sm = sums[r];
    store(out, (row0 + r) * ld_out + col0 + c, sm > 0.0f ? o[t] * (1.0f / sm) : 0.0f);
  }
}

cudaDataType_t dt(DType t) {
  return t == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

}  // namespace

void gemm_attention(CudaBackend& be, const AttnProblem& p, bool bf16) {
  OVIS_ASSERT(!p.kv_pos);
  const DType in_t = bf16 ? DType::BF16 : DType::F32;
  OVIS_ASSERT(p.qt == in_t && p.kvt == in_t);
  const int64_t d = p.d, lk = p.lk, ldq = int64_t(p.hq) * d, ldk = int64_t(p.hk) * d;
  const int64_t tile = std::clamp<int64_t>(int64_t(kScoreBytes / (size_t(lk) * 4)), 1, p.lq);
  Tensor s = be.empty({tile * lk}, DType::F32);
  Tensor pm = be.empty({tile * lk}, in_t);  // probabilities (bf16 in BF16 precision)
  Tensor o = be.empty({tile * d}, DType::F32);
  Tensor sums = be.empty({tile}, DType::F32);
  cublasHandle_t h = be.state().blas();
  const float one = 1.0f, zero = 0.0f;
  const size_t es = dtype_size(in_t);
  for (int hh = 0; hh < p.hq; ++hh) {
    const int64_t g = hh / (p.hq / p.hk);
    const char* qh = static_cast<const char*>(p.q) + size_t(hh * d) * es;
    const char* kh = static_cast<const char*>(p.k) + size_t(g * d) * es;
    const char* vh = static_cast<const char*>(p.v) + size_t(g * d) * es;
    for (int64_t i0 = 0; i0 < p.lq; i0 += tile) {
      const int64_t rows = std::min(tile, p.lq - i0);
      // Keys the last row of the tile can see bound the products.
      int64_t keys = lk;
      if (p.causal) keys = std::clamp<int64_t>(i0 + rows - 1 + lk - p.lq + 1, 0, lk);
      if (keys > 0) {
        // Sᵀ[keys, rows] = K[keys, d] · Q_tileᵀ (column-major view of row-major S [rows, lk]).
        OVIS_CU(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(keys), int(rows), int(d), &one, kh,
                             dt(in_t), int(ldk), qh + size_t(i0 * ldq) * es, dt(in_t), int(ldq),
                             &zero, s.device_ptr(), CUDA_R_32F, int(lk), CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
      }
      softmax_rows_kernel<<<unsigned(rows), kThreads, 0, be.stream()>>>(
          static_cast<const float*>(s.device_ptr()), lk, keys, i0, p.lq, lk, p.causal, p.scale,
          mut_elems(pm), static_cast<float*>(sums.device_ptr()));
      OVIS_CU_LAUNCHED("attention softmax");
      if (keys > 0) {
        // Oᵀ[d, rows] = Vᵀ[d, keys] · Pᵀ[keys, rows].
        OVIS_CU(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, int(d), int(rows), int(keys), &one, vh,
                             dt(in_t), int(ldk), pm.device_ptr(), dt(in_t), int(lk), &zero,
                             o.device_ptr(), CUDA_R_32F, int(d), CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT));
      } else {
        OVIS_CU(cudaMemsetAsync(o.device_ptr(), 0, size_t(rows * d) * 4, be.stream()));
      }
      normalize_kernel<<<blocks_for(rows * d), kThreads, 0, be.stream()>>>(
          static_cast<const float*>(o.device_ptr()), static_cast<const float*>(sums.device_ptr()),
          rows, d, MutElems{p.out, p.ot}, ldq, int64_t(hh) * d, i0);
      OVIS_CU_LAUNCHED("attention normalize");
    }
  }
}

}  // namespace ovis::ops::cuda
