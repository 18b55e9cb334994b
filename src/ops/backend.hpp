// A device's implementation of the ops (in the spirit of ggml-backend). The front-end functions
// in ops.hpp check shapes and devices, then call these; a backend may assume valid arguments on
// its own device. Each backend lives in src/ops/<name>/.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.hpp"
#include "ops/graph.hpp"
#include "ops/ops.hpp"

namespace ovis::ops {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;
  virtual Allocator& allocator() = 0;
  virtual DType act_dtype(Precision p) const = 0;
  virtual int threads() const { return 1; }
  // Called before every op from the calling thread (the CPU backend applies its thread count to
  // that thread's OpenMP team; a GPU backend makes its device current).
  virtual void activate() {}
  // Waits until all queued work is done (a no-op on the CPU).
  virtual void synchronize() {}

  // ---- weights ----
  virtual LinearWeights prepare_linear(const Context& c, const Tensor& w, const Tensor* b,
                                       bool sole_user) = 0;
  virtual ConvWeights prepare_conv(const Context& c, const Tensor& w, const Tensor* b) = 0;
  virtual Tensor prepare_f32(const Tensor& w) = 0;
  virtual Tensor prepare_stored(const Tensor& w) = 0;

  // ---- ops (see ops.hpp for semantics) ----
  virtual Tensor linear(const Context& c, const Tensor& x, const LinearWeights& w) = 0;
  // Default: one linear() per weight.
  virtual std::vector<Tensor> linear_group(const Context& c, const Tensor& x,
                                           const std::vector<const LinearWeights*>& w) {
    std::vector<Tensor> out;
    out.reserve(w.size());
    for (const LinearWeights* lw : w) out.push_back(linear(c, x, *lw));
    return out;
  }
  virtual Tensor matmul(const Context& c, const Tensor& a, const Tensor& b) = 0;

  virtual Tensor rms_norm(const Context& c, const Tensor& x, const Tensor* w, float eps) = 0;
  virtual Tensor layer_norm(const Context& c, const Tensor& x, const Tensor* w, const Tensor* b,
                            float eps) = 0;
  virtual Tensor group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w,
                            const Tensor& b, float eps) = 0;
  virtual Tensor group_norm_stats(const Context& c, const Tensor& x, int groups, float eps) = 0;
  virtual void group_moments_add_(const Context& c, Tensor& acc, const Tensor& x, int groups,
                                  int64_t y0, int64_t y1, int64_t x0, int64_t x1) = 0;
  virtual Tensor group_norm_stats_from_moments(const Context& c, const Tensor& acc, float eps) = 0;

  virtual void silu_(const Context& c, Tensor& x) = 0;
  virtual void gelu_tanh_(const Context& c, Tensor& x) = 0;
  virtual Tensor swiglu(const Context& c, const Tensor& gate, const Tensor& up) = 0;
  virtual void add_(const Context& c, Tensor& y, const Tensor& x) = 0;
  virtual void affine_(const Context& c, Tensor& y, float scale, float shift) = 0;
  virtual void clamp_(const Context& c, Tensor& y, float lo, float hi) = 0;
  virtual Tensor modulate(const Context& c, const Tensor& x, const Tensor& shift,
                          const Tensor& scale) = 0;
  virtual void gated_add_(const Context& c, Tensor& y, const Tensor& x, const Tensor* gate) = 0;
  virtual void softmax_(const Context& c, Tensor& x) = 0;
  virtual void round_bf16_(const Context& c, Tensor& x) = 0;
  virtual void copy_(const Context& c, Tensor& dst, const Tensor& src) = 0;

  virtual Tensor slice_cols(const Context& c, const Tensor& x, int64_t begin, int64_t end) = 0;
  virtual Tensor concat_cols(const Context& c, const std::vector<Tensor>& parts) = 0;
  virtual Tensor concat_rows(const Context& c, const std::vector<Tensor>& parts) = 0;
  virtual Tensor embedding(const Context& c, const Tensor& table,
                           const std::vector<int64_t>& ids) = 0;
  virtual Tensor embedding(const Context& c, const Tensor& table, const Tensor& ids) = 0;
  virtual Tensor argmax(const Context& c, const Tensor& x) = 0;
  virtual Tensor mean_rows(const Context& c, const Tensor& x) = 0;
  virtual Tensor permute(const Context& c, const Tensor& x, const std::vector<int>& perm) = 0;
  virtual Tensor crop(const Context& c, const Tensor& x, int64_t y0, int64_t y1, int64_t x0,
                      int64_t x1) = 0;
  virtual void accumulate_tile_(const Context& c, Tensor& out, const Tensor& tile, int64_t y0,
                                int64_t x0, const std::vector<float>& wy,
                                const std::vector<float>& wx) = 0;
  virtual Tensor upsample_nearest2x(const Context& c, const Tensor& x) = 0;
  virtual Tensor grid_positions(const Context& c, int64_t h, int64_t w, float t) = 0;

  virtual RopeTable rope_table(const Context& c, const Tensor& positions, const RopeFreqs& f) = 0;
  virtual RopeTable rope_table(const Context& c, int64_t start, int64_t L, const RopeFreqs& f) = 0;
  virtual void rope_(const Context& c, Tensor& x, int heads, const RopeTable& t,
                     RopeLayout layout) = 0;

  virtual Tensor attention(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                           int q_heads, int kv_heads, float scale, bool causal) = 0;

  virtual RopeTable rope_table_at(const Context& c, const Tensor& pos, int64_t L,
                                  const RopeFreqs& f) = 0;
  virtual void copy_rows_at_(const Context& c, Tensor& dst, const Tensor& src,
                             const Tensor& pos) = 0;
  virtual Tensor attention_at(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& pos, int q_heads, int kv_heads, float scale) = 0;

  virtual Tensor conv2d(const Context& c, const Tensor& x, const ConvWeights& w,
                        const Conv2dParams& p, const ConvPrologue& prologue) = 0;

  virtual Tensor timestep_embedding(const Context& c, float t, int dim, float max_period) = 0;
  virtual void guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v,
                                  Guidance g, float s0, float s1, float dt, Tensor* guided) = 0;
  virtual Tensor image_to_u8(const Context& c, const Tensor& x) = 0;
  virtual Tensor randn_torch_cuda(const Context& c, const Shape& shape, uint64_t seed) = 0;

  // ---- graphs (ops/graph.hpp) ----
  // The default runs the body eagerly at every replay (no capture).
  virtual std::unique_ptr<OpGraph> capture(const Context& c, std::function<void()> body);
};

}  // namespace ovis::ops
