// GEMMs: cuBLASLt with fp32 accumulation (bf16 inputs and output in BF16 precision, plain fp32 in
// F32 precision: CUBLAS_COMPUTE_32F never uses TF32) and the bias fused as the epilogue; a
// bandwidth-bound GEMV kernel for decode-sized M. F32 precision with 16-bit weights widens the
// weight block by block into a bounded f32 scratch (no persistent f32 copy); Q8_0/Q4_K weights
// are dequantized the same way into the activation dtype (quant.cu).
#include <algorithm>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/kernels.cuh"
#include "ops/cuda/prepared.hpp"
#include "ops/cuda/quant.hpp"

namespace ovis::ops::cuda {

namespace {

constexpr int64_t kGemvMaxRows = 4;
constexpr size_t kWidenBytes = size_t(64) << 20;  // f32 scratch of one widened weight block

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32:
      return CUDA_R_32F;
    case DType::BF16:
      return CUDA_R_16BF;
    case DType::F16:
      return CUDA_R_16F;
    default:
      fail("internal error: GEMM on ", dtype_name(t));
  }
}

// Largest power of two (<= 256) dividing the address: what cuBLASLt may assume.
int alignment_of(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  int al = 256;
  while (al > 1 && (a % uintptr_t(al)) != 0) al /= 2;
  return al;
}

// ---- GEMV: y[m, n] = Σ_k x[m, k]·w[n, k] (+ b[n]), one warp per output row n ----

template <class W>
__device__ __forceinline__ float wval(const W* w, int64_t i) {
  if constexpr (std::is_same_v<W, float>)
    return w[i];
  else if constexpr (std::is_same_v<W, __half>)
    return __half2float(w[i]);
  else
    return __bfloat162float(w[i]);
}

template <class W, int M>
__global__ void gemv_kernel(const W* __restrict__ w, int64_t N, int64_t K, Elems x, bool round_x,
                            const float* __restrict__ bias, MutElems y, bool vec) {
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (n >= N) return;
  const W* row = w + n * K;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  auto xval = [&](int m, int64_t k) {
    const float v = load(x, int64_t(m) * K + k);
    return round_x ? round_to_bf16(v) : v;
  };
  constexpr int kVec = 16 / sizeof(W);  // elements per 16-byte load
  int64_t k0 = 0;
  if (vec) {
    for (; k0 + 32 * kVec <= K; k0 += 32 * kVec) {
      const int64_t k = k0 + lane * kVec;
      const uint4 raw = *reinterpret_cast<const uint4*>(row + k);
      const W* wv = reinterpret_cast<const W*>(&raw);
#pragma unroll
      for (int j = 0; j < kVec; ++j) {
        const float wj = wval(wv, j);
#pragma unroll
        for (int m = 0; m < M; ++m) acc[m] += xval(m, k + j) * wj;
      }
    }
  }
  for (int64_t k = k0 + lane; k < K; k += 32) {
    const float wk = wval(row, k);
#pragma unroll
    for (int m = 0; m < M; ++m) acc[m] += xval(m, k) * wk;
  }
  store_warp_rows<M>(acc, lane, n, N, bias, y);
}

template <class W>
void gemv(cudaStream_t s, const Tensor& w, const Tensor& x, bool round_x, const float* bias,
          Tensor& y, int64_t M) {
  const int64_t N = w.dim(0), K = w.dim(1);
  const W* wp = static_cast<const W*>(w.device_ptr());
  const bool vec = K % (16 / int64_t(sizeof(W))) == 0 && alignment_of(wp) >= 16;
  const int rows_per_block = kThreads / 32;
  const unsigned blocks = unsigned((N + rows_per_block - 1) / rows_per_block);
  switch (M) {
    case 1:
      gemv_kernel<W, 1>
          <<<blocks, kThreads, 0, s>>>(wp, N, K, elems(x), round_x, bias, mut_elems(y), vec);
      break;
    case 2:
      gemv_kernel<W, 2>
          <<<blocks, kThreads, 0, s>>>(wp, N, K, elems(x), round_x, bias, mut_elems(y), vec);
      break;
    case 3:
      gemv_kernel<W, 3>
          <<<blocks, kThreads, 0, s>>>(wp, N, K, elems(x), round_x, bias, mut_elems(y), vec);
      break;
    default:
      gemv_kernel<W, 4>
          <<<blocks, kThreads, 0, s>>>(wp, N, K, elems(x), round_x, bias, mut_elems(y), vec);
  }
  OVIS_CU_LAUNCHED("gemv");
}

// dst [rows, cols] f32 = src[r0 + i, c0 + j] of a [*, ld] matrix in dtype t (widening a block).
__global__ void widen_block_kernel(Elems src, int64_t ld, int64_t r0, int64_t c0, int64_t rows,
                                   int64_t cols, float* dst) {
  OVIS_GRID_STRIDE(i, rows * cols) {
    const int64_t r = i / cols, c = i % cols;
    dst[i] = load(src, (r0 + r) * ld + c0 + c);
  }
}

// y[m, n] += b[n] (the fallback path without a cuBLASLt epilogue).
// y (column-major [m, n/m] with leading dimension ld, e.g. a column block of a wider output)
// += b[row] over its n elements.
__global__ void add_bias_kernel(MutElems y, const float* b, int64_t n, int64_t m, int64_t ld) {
  OVIS_GRID_STRIDE(i, n) {
    const int64_t at = (i / m) * ld + i % m;
    store(y, at, load(y, at) + b[i % m]);
  }
}

struct LtKey {
  int64_t m, n, k, lda, ldb, ldd;
  int ta, tb, td, tbias;
  bool trans_a, bias;
  int al_a, al_b, al_d, al_bias;
  bool operator<(const LtKey& o) const {
    return std::tie(m, n, k, lda, ldb, ldd, ta, tb, td, tbias, trans_a, bias, al_a, al_b, al_d,
                    al_bias) < std::tie(o.m, o.n, o.k, o.lda, o.ldb, o.ldd, o.ta, o.tb, o.td,
                                        o.tbias, o.trans_a, o.bias, o.al_a, o.al_b, o.al_d,
                                        o.al_bias);
  }
};

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulHeuristicResult_t heur{};
  bool usable = false;  // false: cuBLASLt offered no algorithm, use cublasGemmEx
  ~LtPlan() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (d) cublasLtMatrixLayoutDestroy(d);
  }
};

}  // namespace

struct GemmPlans {
  static constexpr size_t kMaxPlans = 512;
  std::mutex mu;
  std::map<LtKey, std::unique_ptr<LtPlan>> plans;
};

GemmPlans* make_gemm_plans() {
  return new GemmPlans();
}
void destroy_gemm_plans(GemmPlans* p) {
  delete p;
}

namespace {

// Column-major problem for cuBLASLt: D[m, n] (ld ldd) = op(A)[m, k] · B[k, n] (+ bias[m]).
// A is [k, m] with lda (trans_a) or [m, k] with lda; B is [k, n] with ldb.
struct GemmCall {
  const void* a;
  DType ta;
  int64_t lda;
  bool trans_a;
  const void* b;
  DType tb;
  int64_t ldb;
  void* d;
  DType td;
  int64_t ldd;
  int64_t m, n, k;
  const void* bias = nullptr;  // dtype td
};

void run_gemm(CudaBackend& be, const GemmCall& g) {
  DeviceState& st = be.state();
  const LtKey key{g.m,
                  g.n,
                  g.k,
                  g.lda,
                  g.ldb,
                  g.ldd,
                  int(g.ta),
                  int(g.tb),
                  int(g.td),
                  int(g.td),
                  g.trans_a,
                  g.bias != nullptr,
                  alignment_of(g.a),
                  alignment_of(g.b),
                  alignment_of(g.d),
                  g.bias ? alignment_of(g.bias) : 0};
  GemmPlans& plans = be.gemm_plans();
  std::lock_guard<std::mutex> lock(plans.mu);
  auto it = plans.plans.find(key);
  if (it == plans.plans.end()) {
    if (plans.plans.size() >= GemmPlans::kMaxPlans) plans.plans.clear();
    auto p = std::make_unique<LtPlan>();
    OVIS_CU(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t opa = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, opb = CUBLAS_OP_N;
    OVIS_CU(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    OVIS_CU(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    if (g.bias) {
      const cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
      OVIS_CU(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
      OVIS_CU(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias,
                                             sizeof g.bias));
    }
    OVIS_CU(cublasLtMatrixLayoutCreate(&p->a, cuda_type(g.ta), g.trans_a ? g.k : g.m,
                                       g.trans_a ? g.m : g.k, g.lda));
    OVIS_CU(cublasLtMatrixLayoutCreate(&p->b, cuda_type(g.tb), g.k, g.n, g.ldb));
    OVIS_CU(cublasLtMatrixLayoutCreate(&p->d, cuda_type(g.td), g.m, g.n, g.ldd));
    cublasLtMatmulPreference_t pref = nullptr;
    OVIS_CU(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = DeviceState::kGemmWorkspaceBytes;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                         sizeof ws);
    const uint32_t al[4] = {uint32_t(key.al_a), uint32_t(key.al_b), uint32_t(key.al_d),
                            uint32_t(key.al_d)};
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0],
                                         sizeof(uint32_t));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1],
                                         sizeof(uint32_t));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2],
                                         sizeof(uint32_t));
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[3],
                                         sizeof(uint32_t));
    int found = 0;
    const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(st.lt(), p->op, p->a, p->b, p->d, p->d,
                                                             pref, 1, &p->heur, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    p->usable = hs == CUBLAS_STATUS_SUCCESS && found > 0;
    it = plans.plans.emplace(key, std::move(p)).first;
  }
  LtPlan& p = *it->second;
  const float alpha = 1.0f, beta = 0.0f;
  if (p.usable) {
    if (g.bias)
      OVIS_CU(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias,
                                             sizeof g.bias));
    OVIS_CU(cublasLtMatmul(st.lt(), p.op, &alpha, g.a, p.a, g.b, p.b, &beta, g.d, p.d, g.d, p.d,
                           &p.heur.algo, st.gemm_workspace(), DeviceState::kGemmWorkspaceBytes,
                           be.stream()));
    return;
  }
  // No cuBLASLt algorithm for this layout: plain cuBLAS, then the bias.
  OVIS_CU(cublasGemmEx(st.blas(), g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, int(g.m),
                       int(g.n), int(g.k), &alpha, g.a, cuda_type(g.ta), int(g.lda), g.b,
                       cuda_type(g.tb), int(g.ldb), &beta, g.d, cuda_type(g.td), int(g.ldd),
                       CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (g.bias) {
    // The epilogue-less path adds an f32 bias: the caller passes one in the output dtype, so
    // widen it (tiny) first.
    const int64_t total = g.m * g.n;
    Tensor bf = be.empty({g.m}, DType::F32);
    widen_block_kernel<<<blocks_for(g.m), kThreads, 0, be.stream()>>>(
        Elems{g.bias, g.td}, g.m, 0, 0, 1, g.m, static_cast<float*>(bf.device_ptr()));
    add_bias_kernel<<<blocks_for(total), kThreads, 0, be.stream()>>>(
        MutElems{g.d, g.td}, static_cast<const float*>(bf.device_ptr()), total, g.m, g.ldd);
    OVIS_CU_LAUNCHED("gemm bias");
  }
}

}  // namespace

Tensor CudaBackend::linear(const Context& c, const Tensor& x_in, const LinearWeights& lw) {
  const Tensor& w = lw.w;
  const int64_t K = w.dim(1), N = w.dim(0), M = x_in.numel() / K;
  Shape out_shape = x_in.shape();
  out_shape.back() = N;
  const bool bf16 = c.precision == Precision::BF16;
  const DType act = c.act_dtype();
  Tensor y = empty(out_shape, act);
  if (M == 0 || N == 0) return y;
  const PreparedCuda* prep = prepared_of(lw.prepared);
  const float* bias_f32 = lw.b.defined() ? static_cast<const float*>(lw.b.device_ptr()) : nullptr;

  if (dtype_is_quantized(w.dtype())) {
    if (M <= kGemvMaxRows) {
      quant_gemv(*this, w, x_in, bf16, bias_f32, y, M);
      return y;
    }
    // Blocks of output rows dequantized into the activation dtype (bf16: rounded to nearest
    // even, the GEMM's input precision), one GEMM per block; multiples of 64 rows keep every
    // output pointer 128-byte aligned.
    const Tensor x = as_dtype(x_in, act);
    const int64_t es = int64_t(dtype_size(act));
    const int64_t nb =
        std::max<int64_t>(64, int64_t(kWidenBytes / (size_t(K) * size_t(es))) / 64 * 64);
    Tensor scratch = empty({std::min(nb, N) * K}, act);
    Tensor bb;
    if (bf16 && lw.b.defined())
      bb = prep && prep->b_bf16.defined() ? prep->b_bf16 : as_dtype(lw.b, DType::BF16);
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      const int64_t rows = std::min(nb, N - n0);
      dequantize_rows(*this, w, n0, rows, mut_elems(scratch));
      const void* bias = nullptr;
      if (bf16 && bb.defined())
        bias = static_cast<const char*>(bb.device_ptr()) + n0 * es;
      else if (!bf16 && bias_f32)
        bias = bias_f32 + n0;
      run_gemm(*this, {scratch.device_ptr(), act, K, true, x.device_ptr(), act, K,
                       static_cast<char*>(y.device_ptr()) + n0 * es, act, N, rows, M, K, bias});
    }
    return y;
  }

  if (M <= kGemvMaxRows) {
    // Decode: stream the stored weight once (bf16 products are exact in fp32).
    const Tensor x = x_in;
    switch (w.dtype()) {
      case DType::BF16:
        gemv<__nv_bfloat16>(stream(), w, x, bf16, bias_f32, y, M);
        break;
      case DType::F16:
        gemv<__half>(stream(), w, x, bf16, bias_f32, y, M);
        break;
      default:
        if (bf16) {
          const Tensor wb =
              prep && prep->w_bf16.defined() ? prep->w_bf16 : as_dtype(w, DType::BF16);
          gemv<__nv_bfloat16>(stream(), wb, x, true, bias_f32, y, M);
        } else {
          gemv<float>(stream(), w, x, false, bias_f32, y, M);
        }
    }
    return y;
  }

  const Tensor x = as_dtype(x_in, act);
  if (bf16) {
    const Tensor wb = w.dtype() == DType::BF16         ? w
                      : prep && prep->w_bf16.defined() ? prep->w_bf16
                                                       : as_dtype(w, DType::BF16);
    Tensor bb;
    if (lw.b.defined())
      bb = prep && prep->b_bf16.defined() ? prep->b_bf16 : as_dtype(lw.b, DType::BF16);
    run_gemm(*this,
             {wb.device_ptr(), DType::BF16, K, true, x.device_ptr(), DType::BF16, K, y.device_ptr(),
              DType::BF16, N, N, M, K, bb.defined() ? bb.device_ptr() : nullptr});
    return y;
  }
  if (w.dtype() == DType::F32) {
    run_gemm(*this, {w.device_ptr(), DType::F32, K, true, x.device_ptr(), DType::F32, K,
                     y.device_ptr(), DType::F32, N, N, M, K, bias_f32});
    return y;
  }
  // F32 precision, 16-bit weight: widen blocks of output rows (multiples of 64 keep every
  // output pointer 256-byte aligned) and run one f32 GEMM per block.
  const int64_t nb = std::max<int64_t>(64, int64_t(kWidenBytes / (size_t(K) * 4)) / 64 * 64);
  Tensor scratch = empty({std::min(nb, N) * K}, DType::F32);
  float* sp = static_cast<float*>(scratch.device_ptr());
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t rows = std::min(nb, N - n0);
    widen_block_kernel<<<blocks_for(rows * K), kThreads, 0, stream()>>>(elems(w), K, n0, 0, rows, K,
                                                                        sp);
    OVIS_CU_LAUNCHED("widen weight");
    run_gemm(*this, {sp, DType::F32, K, true, x.device_ptr(), DType::F32, K,
                     static_cast<float*>(y.device_ptr()) + n0, DType::F32, N, rows, M, K,
                     bias_f32 ? bias_f32 + n0 : nullptr});
  }
  return y;
}

Tensor CudaBackend::matmul(const Context& c, const Tensor& a_in, const Tensor& b) {
  const int64_t K = b.dim(0), N = b.dim(1), M = a_in.numel() / K;
  Shape out_shape = a_in.shape();
  out_shape.back() = N;
  const DType act = c.act_dtype();
  if (dtype_is_quantized(b.dtype())) {
    // The (rare) quantized right-hand operand, the visual embedding table: dequantized whole into
    // the activation dtype for the call.
    Tensor bd = empty(b.shape(), act);
    dequantize_rows(*this, b, 0, K, mut_elems(bd));
    return matmul(c, a_in, bd);
  }
  Tensor y = empty(out_shape, act);
  if (M == 0 || N == 0) return y;
  const Tensor a = as_dtype(a_in, act);
  if (c.precision == Precision::BF16) {
    const Tensor bb = as_dtype(b, DType::BF16);
    run_gemm(*this, {bb.device_ptr(), DType::BF16, N, false, a.device_ptr(), DType::BF16, K,
                     y.device_ptr(), DType::BF16, N, N, M, K});
    return y;
  }
  if (b.dtype() == DType::F32) {
    run_gemm(*this, {b.device_ptr(), DType::F32, N, false, a.device_ptr(), DType::F32, K,
                     y.device_ptr(), DType::F32, N, N, M, K});
    return y;
  }
  // F32 precision, 16-bit b [K, N]: widen blocks of columns into a compact [K, nb] scratch.
  const int64_t nb = std::max<int64_t>(64, int64_t(kWidenBytes / (size_t(K) * 4)) / 64 * 64);
  const int64_t cols_max = std::min(nb, N);
  Tensor scratch = empty({K * cols_max}, DType::F32);
  float* sp = static_cast<float*>(scratch.device_ptr());
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t cols = std::min(nb, N - n0);
    widen_block_kernel<<<blocks_for(K * cols), kThreads, 0, stream()>>>(elems(b), N, 0, n0, K, cols,
                                                                        sp);
    OVIS_CU_LAUNCHED("widen weight");
    run_gemm(*this, {sp, DType::F32, cols, false, a.device_ptr(), DType::F32, K,
                     static_cast<float*>(y.device_ptr()) + n0, DType::F32, N, cols, M, K});
  }
  return y;
}

}  // namespace ovis::ops::cuda
