// Attention of a few queries (decode) over a long KV cache, split over the keys so that the
// whole GPU streams the cache (flash-decoding): block (split s, kv head g) scores its chunk of
// keys for every query row of g's group (row r = query r / group of head g·group + r % group),
// softmaxes it locally and writes (max, sum, unnormalised O); a second kernel merges the chunks.
// fp32 arithmetic from the stored dtype (as the CPU's few-query kernel). The number of splits
// is fixed by the cache's capacity, and the key count may be read on the device, so a captured
// decode step replays at any position.
#include <algorithm>

#include "core/error.hpp"
#include "ops/cuda/attention.hpp"
#include "ops/cuda/check.hpp"
#include "ops/cuda/kernels.cuh"

namespace ovis::ops::cuda {

namespace {

constexpr int kChunk = 64;                // keys per split
constexpr int kDecodeThreads = 128;       // 4 warps
constexpr int64_t kMaxRowsTimesD = 8192;  // query rows x head dim kept in shared memory (32 KB)
constexpr int64_t kMaxRows = 64;
// The queries and a row of scores per query row fit the 48 KiB a launch gets without opting in.
static_assert((kMaxRowsTimesD + kMaxRows * kChunk) * sizeof(float) <= 48 * 1024);

struct DecodeArgs {
  Elems q, k, v;
  int64_t lq, lk, d, ldq, ldk;
  int hq, hk, group, rows;
  float scale;
  bool causal;
  const float* kv_pos;
  int splits;
  float* m_part;  // [splits][hk][rows]
  float* l_part;
  float* o_part;  // [splits][hk][rows][d]
};

// Keys in use: pos + lq when the position is read on the device, never more than the cache's
// rows (a.lk, the capacity then): a stale or wrong position must not read past K/V.
__device__ __forceinline__ int64_t keys_of(const DecodeArgs& a) {
  if (!a.kv_pos) return a.lk;
  const int64_t n = position(a.kv_pos) + a.lq;
  return n < 0 ? 0 : (n > a.lk ? a.lk : n);
}

__device__ __forceinline__ int64_t key_end(const DecodeArgs& a, int64_t lk, int64_t i) {
  if (!a.causal) return lk;
  const int64_t e = i + lk - a.lq + 1;
  return e < 0 ? 0 : (e > lk ? lk : e);
}

__global__ void __launch_bounds__(kDecodeThreads) decode_split_kernel(DecodeArgs a) {
  extern __shared__ float sm[];
  float* sq = sm;                          // [rows][d]
  float* ss = sm + int64_t(a.rows) * a.d;  // [rows][kChunk]
  const int s = blockIdx.x, g = blockIdx.y;
  const int64_t lk = keys_of(a);
  const int64_t j0 = int64_t(s) * kChunk, j1 = min(lk, j0 + kChunk);
  const int64_t part = (int64_t(s) * a.hk + g) * a.rows;
  if (j0 >= j1) {
    for (int r = threadIdx.x; r < a.rows; r += blockDim.x) {
      a.m_part[part + r] = -INFINITY;
      a.l_part[part + r] = 0.0f;
    }
    return;
  }
  for (int64_t t = threadIdx.x; t < int64_t(a.rows) * a.d; t += blockDim.x) {
    const int64_t r = t / a.d, c = t % a.d;
    const int64_t i = r / a.group, h = int64_t(g) * a.group + r % a.group;
    sq[t] = load(a.q, i * a.ldq + h * a.d + c);
  }
  __syncthreads();
  // Scores: warp w takes keys j0 + w, j0 + w + 4, ...; lanes split the head dim.
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int64_t j = j0 + warp; j < j1; j += kDecodeThreads / 32) {
    const int64_t kbase = j * a.ldk + int64_t(g) * a.d;
    for (int r = 0; r < a.rows; ++r) {
      float dot = 0.0f;
      for (int64_t c = lane; c < a.d; c += 32) dot += sq[r * a.d + c] * load(a.k, kbase + c);
      dot = warp_sum(dot);
      if (lane == 0) {
        const int64_t i = r / a.group;
        ss[r * kChunk + (j - j0)] = j < key_end(a, lk, i) ? dot * a.scale : -INFINITY;
      }
    }
  }
  __syncthreads();
  // Local softmax per row (one thread per row).
  const int n = int(j1 - j0);
  for (int r = threadIdx.x; r < a.rows; r += blockDim.x) {
    float mx = -INFINITY;
    for (int j = 0; j < n; ++j) mx = fmaxf(mx, ss[r * kChunk + j]);
    float l = 0.0f;
    for (int j = 0; j < n; ++j) {
      const float e = mx == -INFINITY ? 0.0f : expf(ss[r * kChunk + j] - mx);
      ss[r * kChunk + j] = e;
      l += e;
    }
    a.m_part[part + r] = mx;
    a.l_part[part + r] = l;
  }
  __syncthreads();
  // Unnormalised O of the chunk.
  for (int64_t t = threadIdx.x; t < int64_t(a.rows) * a.d; t += blockDim.x) {
    const int64_t r = t / a.d, c = t % a.d;
    float acc = 0.0f;
    for (int j = 0; j < n; ++j)
      acc += ss[r * kChunk + j] * load(a.v, (j0 + j) * a.ldk + int64_t(g) * a.d + c);
    a.o_part[part * a.d + t] = acc;
  }
}

__global__ void decode_merge_kernel(DecodeArgs a, MutElems out) {
  const int64_t total = int64_t(a.hk) * a.rows * a.d;
  const int64_t lk = keys_of(a);
  const int64_t chunks = (lk + kChunk - 1) / kChunk;
  const int used = int(chunks < a.splits ? chunks : a.splits);
  OVIS_GRID_STRIDE(t, total) {
    const int64_t c = t % a.d, gr = t / a.d, r = gr % a.rows, g = gr / a.rows;
    float M = -INFINITY;
    for (int s = 0; s < used; ++s) M = fmaxf(M, a.m_part[(int64_t(s) * a.hk + g) * a.rows + r]);
    float L = 0.0f, O = 0.0f;
    if (M != -INFINITY)
      for (int s = 0; s < used; ++s) {
        const int64_t idx = (int64_t(s) * a.hk + g) * a.rows + r;
        const float l = a.l_part[idx];
        if (l == 0.0f) continue;
        const float w = expf(a.m_part[idx] - M);
        L += l * w;
        O += a.o_part[idx * a.d + c] * w;
      }
    const int64_t i = r / a.group, h = g * a.group + r % a.group;
    store(out, i * a.ldq + h * a.d + c, L > 0.0f ? O / L : 0.0f);
  }
}

}  // namespace

bool decode_fits(const AttnProblem& p) {
  const int64_t rows = p.lq * (p.hq / p.hk);
  return p.lq <= kDecodeMaxQueries && rows <= kMaxRows && rows * p.d <= kMaxRowsTimesD;
}

void decode_attention(CudaBackend& be, const AttnProblem& p) {
  OVIS_ASSERT(decode_fits(p));
  DecodeArgs a{};
  a.q = Elems{p.q, p.qt};
  a.k = Elems{p.k, p.kvt};
  a.v = Elems{p.v, p.kvt};
  a.lq = p.lq;
  a.lk = p.lk;
  a.d = p.d;
  a.ldq = int64_t(p.hq) * p.d;
  a.ldk = int64_t(p.hk) * p.d;
  a.hq = p.hq;
  a.hk = p.hk;
  a.group = p.hq / p.hk;
  a.rows = int(p.lq * a.group);
  a.scale = p.scale;
  a.causal = p.causal;
  a.kv_pos = p.kv_pos;
  a.splits = int(std::max<int64_t>(1, (p.lk + kChunk - 1) / kChunk));
  const int64_t parts = int64_t(a.splits) * p.hk * a.rows;
  Tensor ml = be.empty({2 * parts}, DType::F32);
  Tensor op = be.empty({parts * p.d}, DType::F32);
  a.m_part = static_cast<float*>(ml.device_ptr());
  a.l_part = a.m_part + parts;
  a.o_part = static_cast<float*>(op.device_ptr());
  const size_t smem = size_t(int64_t(a.rows) * (p.d + kChunk)) * sizeof(float);
  decode_split_kernel<<<dim3(unsigned(a.splits), unsigned(p.hk)), kDecodeThreads, smem,
                        be.stream()>>>(a);
  OVIS_CU_LAUNCHED("decode attention");
  const int64_t total = int64_t(p.hk) * a.rows * p.d;
  decode_merge_kernel<<<blocks_for(total), kThreads, 0, be.stream()>>>(a, MutElems{p.out, p.ot});
  OVIS_CU_LAUNCHED("decode attention merge");
}

}  // namespace ovis::ops::cuda
