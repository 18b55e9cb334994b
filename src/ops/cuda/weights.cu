// Weights: uploaded once in their stored dtype (a tensor already on the device, such as the
// embedding table the tied LM head reuses, is not copied again). BF16 precision adds a bf16 form
// where the stored dtype is another; F32 precision widens 16-bit weights per call, block by
// block (gemm.cu, conv.cu), so no f32 copy of a bf16 checkpoint is ever kept. Q8_0/Q4_K weights
// are uploaded as blocks and never get a float form (quant.cu decodes them in the kernels).
#include "ops/cuda/cuda_backend_impl.hpp"
#include "ops/cuda/prepared.hpp"

namespace ovis::ops::cuda {

Tensor CudaBackend::prepare_stored(const Tensor& w) {
  return w.to(device());
}

Tensor CudaBackend::prepare_f32(const Tensor& w) {
  return as_dtype(w.to(device()), DType::F32);
}

LinearWeights CudaBackend::prepare_linear(const Context& c, const Tensor& w, const Tensor* b,
                                          bool /*sole_user*/) {
  LinearWeights lw;
  lw.w = prepare_stored(w);
  Tensor b_dev;
  if (b) {
    b_dev = b->to(device());
    lw.b = as_dtype(b_dev, DType::F32);
  }
  if (c.precision == Precision::BF16) {
    auto p = std::make_shared<PreparedCuda>();
    // Quantized weights stay in their blocks (dequantized per call, quant.cu).
    if (lw.w.dtype() != DType::BF16 && !dtype_is_quantized(lw.w.dtype()))
      p->w_bf16 = as_dtype(lw.w, DType::BF16);
    if (b) p->b_bf16 = as_dtype(b_dev, DType::BF16);
    lw.prepared = std::move(p);
  }
  return lw;
}

ConvWeights CudaBackend::prepare_conv(const Context& c, const Tensor& w, const Tensor* b) {
  ConvWeights cw;
  cw.w = prepare_stored(w);
  if (b) cw.b = prepare_f32(*b);
  if (c.precision == Precision::BF16 && cw.w.dtype() != DType::BF16) {
    auto p = std::make_shared<PreparedCuda>();
    p->w_bf16 = as_dtype(cw.w, DType::BF16);
    cw.prepared = std::move(p);
  }
  return cw;
}

}  // namespace ovis::ops::cuda
