// Flash attention on bf16 tensor cores (FlashAttention-2 style). A block of 4 warps owns 64
// queries of one head; each warp owns 16 query rows and keeps its Q fragments, the running max /
// sum and the O accumulators in registers. Per 64-key block: S = Q·Kᵀ by mma.sync m16n8k16
// (fp32 accumulate), the online softmax in the log2 domain, P rounded to bf16 straight from the
// S accumulators (their layout is the A-operand layout of the next mma), O += P·V. The row sums
// add the fp32 probabilities before that rounding, as the reference's kernels do. K is staged
// row-major and V transposed in shared memory, so every fragment is one 32-bit load.
#include <cuda_bf16.h>

#include "core/error.hpp"
#include "ops/cuda/attention.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

constexpr int kBr = 64, kBc = 64, kWarps = 4;
constexpr int kVtPad = 2;  // V^T rows of kBc + 2 bf16: the transposing stores spread over banks

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ uint32_t ld32(const __nv_bfloat16* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32)
    flash_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                 const __nv_bfloat16* __restrict__ v, __nv_bfloat16* __restrict__ out, int64_t lq,
                 int64_t lk, int hq, int hk, float scale_log2, bool causal) {
  constexpr int kLd = D + 8;           // Q/K smem row stride (bf16): 16-byte aligned rows
  constexpr int kLdVt = kBc + kVtPad;  // V^T smem row stride
  constexpr int kChunks = D / 8;       // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __nv_bfloat16* sQ = reinterpret_cast<__nv_bfloat16*>(smem_raw);
  __nv_bfloat16* sK = sQ + kBr * kLd;
  __nv_bfloat16* sVt = sK + kBc * kLd;

  const int h = blockIdx.y, g = h / (hq / hk);
  const int64_t q0 = int64_t(blockIdx.x) * kBr;
  const int64_t ldq = int64_t(hq) * D, ldk = int64_t(hk) * D;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int gr = lane >> 2, gc = lane & 3;  // mma groupID, thread in group

  // Q tile (rows beyond lq are zero).
  for (int c = threadIdx.x; c < kBr * kChunks; c += blockDim.x) {
    const int r = c / kChunks, d0 = (c % kChunks) * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (q0 + r < lq)
      val = *reinterpret_cast<const uint4*>(q + (q0 + r) * ldq + int64_t(h) * D + d0);
    *reinterpret_cast<uint4*>(sQ + r * kLd + d0) = val;
  }
  __syncthreads();
  uint32_t qa[D / 16][4];
  const int row0 = warp * 16 + gr;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    qa[kk][0] = ld32(sQ + row0 * kLd + kk * 16 + 2 * gc);
    qa[kk][1] = ld32(sQ + (row0 + 8) * kLd + kk * 16 + 2 * gc);
    qa[kk][2] = ld32(sQ + row0 * kLd + kk * 16 + 8 + 2 * gc);
    qa[kk][3] = ld32(sQ + (row0 + 8) * kLd + kk * 16 + 8 + 2 * gc);
  }

  float o[D / 8][4];
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  // Query i sees keys [0, key_end(i)).
  auto key_end = [&](int64_t i) -> int64_t {
    if (!causal) return lk;
    const int64_t e = i + lk - lq + 1;
    return e < 0 ? 0 : (e > lk ? lk : e);
  };
  const int64_t i_rows[2] = {q0 + row0, q0 + row0 + 8};
  const int64_t end_rows[2] = {key_end(i_rows[0]), key_end(i_rows[1])};
  const int64_t last_q = q0 + kBr - 1 < lq - 1 ? q0 + kBr - 1 : lq - 1;
  const int64_t kmax = key_end(last_q);

  for (int64_t kb = 0; kb < kmax; kb += kBc) {
    __syncthreads();  // the previous block's K / V^T are no longer read
    for (int c = threadIdx.x; c < kBc * kChunks; c += blockDim.x) {
      const int r = c / kChunks, d0 = (c % kChunks) * 8;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (kb + r < lk) {
        const int64_t off = (kb + r) * ldk + int64_t(g) * D + d0;
        kv = *reinterpret_cast<const uint4*>(k + off);
        vv = *reinterpret_cast<const uint4*>(v + off);
      }
      *reinterpret_cast<uint4*>(sK + r * kLd + d0) = kv;
      const __nv_bfloat16* ve = reinterpret_cast<const __nv_bfloat16*>(&vv);
#pragma unroll
      for (int e = 0; e < 8; ++e) sVt[(d0 + e) * kLdVt + r] = ve[e];
    }
    __syncthreads();

    // S = Q·Kᵀ for this warp's 16 rows and the block's 64 keys (8 n-tiles of 8 keys).
    float s[kBc / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      const __nv_bfloat16* krow = sK + (nt * 8 + gr) * kLd + 2 * gc;
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk)
        mma_bf16(s[nt], qa[kk], ld32(krow + kk * 16), ld32(krow + kk * 16 + 8));
    }
    // Mask, scale (log2 domain), running max.
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int hr = e >> 1;
        const int64_t j = kb + nt * 8 + 2 * gc + (e & 1);
        const float val = j < end_rows[hr] ? s[nt][e] * scale_log2 : -INFINITY;
        s[nt][e] = val;
        mx[hr] = fmaxf(mx[hr], val);
      }
    float alpha[2], m_use[2];
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 1));
      mx[hr] = fmaxf(mx[hr], __shfl_xor_sync(0xffffffffu, mx[hr], 2));
      const float m_new = fmaxf(m_run[hr], mx[hr]);
      // A row that has seen no key yet keeps m = -inf: nothing to rescale, nothing to add.
      alpha[hr] = m_new == -INFINITY ? 1.0f : exp2f(m_run[hr] - m_new);
      m_use[hr] = m_new == -INFINITY ? 0.0f : m_new;
      m_run[hr] = m_new;
    }
    float rs[2] = {0.0f, 0.0f};
#pragma unroll
    for (int nt = 0; nt < kBc / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = exp2f(s[nt][e] - m_use[e >> 1]);
        s[nt][e] = p;
        rs[e >> 1] += p;
      }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      rs[hr] += __shfl_xor_sync(0xffffffffu, rs[hr], 1);
      rs[hr] += __shfl_xor_sync(0xffffffffu, rs[hr], 2);
      l_run[hr] = l_run[hr] * alpha[hr] + rs[hr];
    }
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      o[dt][0] *= alpha[0];
      o[dt][1] *= alpha[0];
      o[dt][2] *= alpha[1];
      o[dt][3] *= alpha[1];
    }
    // O += P·V, P as bf16 A fragments made from the S accumulators.
#pragma unroll
    for (int kt = 0; kt < kBc / 16; ++kt) {
      const uint32_t pa[4] = {pack_bf16(s[2 * kt][0], s[2 * kt][1]),
                              pack_bf16(s[2 * kt][2], s[2 * kt][3]),
                              pack_bf16(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                              pack_bf16(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const __nv_bfloat16* vrow = sVt + (dt * 8 + gr) * kLdVt + kt * 16 + 2 * gc;
        mma_bf16(o[dt], pa, ld32(vrow), ld32(vrow + 8));
      }
    }
  }

  // O / l; a query that saw no key gets zeros.
#pragma unroll
  for (int hr = 0; hr < 2; ++hr) {
    const int64_t i = i_rows[hr];
    if (i >= lq) continue;
    const float inv = l_run[hr] > 0.0f ? 1.0f / l_run[hr] : 0.0f;
    __nv_bfloat16* orow = out + i * ldq + int64_t(h) * D + 2 * gc;
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
      const __nv_bfloat162 val =
          __floats2bfloat162_rn(o[dt][2 * hr] * inv, o[dt][2 * hr + 1] * inv);
      *reinterpret_cast<__nv_bfloat162*>(orow + dt * 8) = val;
    }
  }
}

template <int D>
void launch(CudaBackend& be, const AttnProblem& p) {
  const size_t smem = size_t((kBr + kBc) * (D + 8) + D * (kBc + kVtPad)) * sizeof(__nv_bfloat16);
  // Above 48 KB of shared memory a kernel must opt in (per device: set at every launch).
  OVIS_CU(cudaFuncSetAttribute(flash_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               int(smem)));
  const dim3 grid(unsigned((p.lq + kBr - 1) / kBr), unsigned(p.hq));
  const float scale_log2 = p.scale * 1.4426950408889634f;
  flash_kernel<D><<<grid, kWarps * 32, smem, be.stream()>>>(
      static_cast<const __nv_bfloat16*>(p.q), static_cast<const __nv_bfloat16*>(p.k),
      static_cast<const __nv_bfloat16*>(p.v), static_cast<__nv_bfloat16*>(p.out), p.lq, p.lk, p.hq,
      p.hk, scale_log2, p.causal);
  OVIS_CU_LAUNCHED("flash attention");
}

}  // namespace

bool flash_supports(int64_t d) {
  return d == 16 || d == 32 || d == 64 || d == 128;
}

void flash_attention(CudaBackend& be, const AttnProblem& p) {
  OVIS_ASSERT(p.qt == DType::BF16 && p.kvt == DType::BF16 && p.ot == DType::BF16 && !p.kv_pos);
  switch (p.d) {
    case 16:
      return launch<16>(be, p);
    case 32:
      return launch<32>(be, p);
    case 64:
      return launch<64>(be, p);
    case 128:
      return launch<128>(be, p);
    default:
      fail("internal error: flash attention for head dim ", p.d);
  }
}

}  // namespace ovis::ops::cuda
