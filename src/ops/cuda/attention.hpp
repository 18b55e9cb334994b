// Internal to the CUDA attention: the problem as the kernels see it and the three kernels.
//  - flash (attention_flash.cu): bf16 tensor cores (mma.sync m16n8k16), online softmax, causal
//    or not, GQA; BF16 precision, head dims 16, 32, 64, 128, any length, no Lq x Lk buffer.
//  - decode (attention_decode.cu): few queries (Lq <= 8) over a long cache, split over the keys
//    (flash-decoding) in fp32; the key count may be read on the device (a captured decode step).
//  - gemm (attention_gemm.cu): query tiles through cuBLAS around an fp32 softmax ([tile, Lk]
//    scores, bounded). Every other case: F32 precision (true fp32, the goldens' tolerances) and
//    head dims the flash kernel does not take (the VAE's one 512-channel head).
#pragma once
#include <cstdint>

#include "ops/cuda/cuda_backend_impl.hpp"

namespace ovis::ops::cuda {

// q [lq, hq·d], k/v [>= keys, hk·d] row-major; out [lq, hq·d].
struct AttnProblem {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  DType qt, kvt, ot;
  int64_t lq;
  int64_t lk;  // keys, or (kv_pos set) the rows the cache holds: an upper bound
  int64_t d;
  int hq, hk;
  float scale;
  bool causal;
  const float* kv_pos = nullptr;  // device: keys = *kv_pos + lq
};

constexpr int64_t kDecodeMaxQueries = 8;

bool flash_supports(int64_t d);
// q, k, v, out bf16, 16-byte aligned; kv_pos unset.
void flash_attention(CudaBackend& be, const AttnProblem& p);
// lq <= kDecodeMaxQueries and decode_fits(p).
bool decode_fits(const AttnProblem& p);
void decode_attention(CudaBackend& be, const AttnProblem& p);
// kv_pos unset; bf16 inputs in BF16 precision (P rounded to bf16), else f32.
void gemm_attention(CudaBackend& be, const AttnProblem& p, bool bf16);

}  // namespace ovis::ops::cuda
