// Which attention kernel runs (attention.hpp): decode for a few queries, the bf16 flash kernel in
// BF16 precision for the head dims it takes, cuBLAS tiles otherwise.
#include "core/error.hpp"
#include "ops/cuda/attention.hpp"
#include "ops/cuda/check.hpp"

namespace ovis::ops::cuda {

namespace {

bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.device_ptr()) % 16 == 0;
}

}  // namespace

Tensor CudaBackend::attention_impl(const Context& c, const Tensor& q_in, const Tensor& k_in,
                                   const Tensor& v_in, const float* kv_pos, int64_t lk, int q_heads,
                                   int kv_heads, float scale, bool causal) {
  const int64_t lq = q_in.dim(0), d = q_in.dim(1) / q_heads;
  const DType act = c.act_dtype();
  Tensor out = empty({lq, int64_t(q_heads) * d}, act);
  if (lq == 0) return out;
  if ((lk == 0 && !kv_pos) || d == 0) {
    OVIS_CU(cudaMemsetAsync(out.device_ptr(), 0, out.nbytes(), stream()));
    return out;
  }
  const bool bf16 = c.precision == Precision::BF16;
  AttnProblem p{q_in.device_ptr(),
                k_in.device_ptr(),
                v_in.device_ptr(),
                out.device_ptr(),
                q_in.dtype(),
                k_in.dtype(),
                act,
                lq,
                lk,
                d,
                q_heads,
                kv_heads,
                scale,
                causal,
                kv_pos};
  if (k_in.dtype() != v_in.dtype()) {
    // Keys and values in one dtype for the kernels (never the case for the models here).
    const Tensor v = as_dtype(v_in, k_in.dtype());
    return attention_impl(c, q_in, k_in, v, kv_pos, lk, q_heads, kv_heads, scale, causal);
  }
  if (decode_fits(p)) {
    decode_attention(*this, p);
    return out;
  }
  if (kv_pos) {
    // Many queries at a device-held position: read it (a host sync; not graph-capturable).
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    OVIS_CU(cudaStreamIsCapturing(stream(), &capturing));
    if (capturing != cudaStreamCaptureStatusNone)
      fail("attention at a device-held position with ", lq, " queries of ", q_heads, "/", kv_heads,
           " heads of ", d, " is beyond the graph-capturable decode kernel (",
           "query rows x head dim must stay within its shared memory)");
    float pos = 0;
    OVIS_CU(cudaMemcpyAsync(&pos, kv_pos, sizeof pos, cudaMemcpyDeviceToHost, stream()));
    OVIS_CU(cudaStreamSynchronize(stream()));
    const int64_t keys = int64_t(pos) + lq;
    return attention_impl(c, q_in, k_in.slice_rows(0, keys), v_in.slice_rows(0, keys), nullptr,
                          keys, q_heads, kv_heads, scale, causal);
  }
  if (bf16 && flash_supports(d)) {
    const Tensor q = as_dtype(q_in, DType::BF16), k = as_dtype(k_in, DType::BF16),
                 v = as_dtype(v_in, DType::BF16);
    if (aligned16(q) && aligned16(k) && aligned16(v)) {
      p.q = q.device_ptr();
      p.k = k.device_ptr();
      p.v = v.device_ptr();
      p.qt = p.kvt = DType::BF16;
      if (act == DType::BF16) {
        flash_attention(*this, p);
        return out;
      }
      Tensor o16 = empty(out.shape(), DType::BF16);
      p.out = o16.device_ptr();
      p.ot = DType::BF16;
      flash_attention(*this, p);
      copy_(c, out, o16);
      return out;
    }
  }
  const DType in_t = bf16 ? DType::BF16 : DType::F32;
  const Tensor q = as_dtype(q_in, in_t), k = as_dtype(k_in, in_t), v = as_dtype(v_in, in_t);
  p.q = q.device_ptr();
  p.k = k.device_ptr();
  p.v = v.device_ptr();
  p.qt = p.kvt = in_t;
  gemm_attention(*this, p, bf16);
  return out;
}

Tensor CudaBackend::attention(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                              int q_heads, int kv_heads, float scale, bool causal) {
  return attention_impl(c, q, k, v, nullptr, k.dim(0), q_heads, kv_heads, scale, causal);
}

Tensor CudaBackend::attention_at(const Context& c, const Tensor& q, const Tensor& k,
                                 const Tensor& v, const Tensor& pos, int q_heads, int kv_heads,
                                 float scale) {
  return attention_impl(c, q, k, v, static_cast<const float*>(pos.device_ptr()), k.dim(0), q_heads,
                        kv_heads, scale, /*causal=*/true);
}

}  // namespace ovis::ops::cuda
