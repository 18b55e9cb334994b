// The CPU backend: OpenMP threads, oneDNN for GEMM/convolution, hand-written AVX-512 kernels
// (GEMV, activations, softmax, AMX attention tiles). Its implementation is spread over the files
// of this folder, one op family each.
#pragma once
#include <memory>
#include <mutex>

#include "ops/backend.hpp"

namespace ovis::ops::cpu {

struct GemmPlans;  // gemm.cpp: oneDNN matmul primitives, bounded LRU
struct ConvPlans;  // conv.cpp: oneDNN convolution primitives, bounded LRU
GemmPlans* make_gemm_plans();
void destroy_gemm_plans(GemmPlans* p);
ConvPlans* make_conv_plans();
void destroy_conv_plans(ConvPlans* p);

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& opts);
  ~CpuBackend() override;

  Device device() const override { return Device::cpu(); }
  std::string name() const override;
  Allocator& allocator() override;
  DType act_dtype(Precision) const override { return DType::F32; }
  int threads() const override { return threads_; }
  void activate() override;
  size_t conv_band_bytes() const { return band_bytes_; }

  LinearWeights prepare_linear(const Context& c, const Tensor& w, const Tensor* b,
                               bool sole_user) override;
  ConvWeights prepare_conv(const Context& c, const Tensor& w, const Tensor* b) override;
  Tensor prepare_f32(const Tensor& w) override;
  Tensor prepare_stored(const Tensor& w) override { return w; }

  Tensor linear(const Context& c, const Tensor& x, const LinearWeights& w) override;
  std::vector<Tensor> linear_group(const Context& c, const Tensor& x,
                                   const std::vector<const LinearWeights*>& w) override;
  Tensor matmul(const Context& c, const Tensor& a, const Tensor& b) override;

  Tensor rms_norm(const Context& c, const Tensor& x, const Tensor* w, float eps) override;
  Tensor layer_norm(const Context& c, const Tensor& x, const Tensor* w, const Tensor* b,
                    float eps) override;
  Tensor group_norm(const Context& c, const Tensor& x, int groups, const Tensor& w, const Tensor& b,
                    float eps) override;
  Tensor group_norm_stats(const Context& c, const Tensor& x, int groups, float eps) override;
  void group_moments_add_(const Context& c, Tensor& acc, const Tensor& x, int groups, int64_t y0,
                          int64_t y1, int64_t x0, int64_t x1) override;
  Tensor group_norm_stats_from_moments(const Context& c, const Tensor& acc, float eps) override;

  void silu_(const Context& c, Tensor& x) override;
  void gelu_tanh_(const Context& c, Tensor& x) override;
  Tensor swiglu(const Context& c, const Tensor& gate, const Tensor& up) override;
  void add_(const Context& c, Tensor& y, const Tensor& x) override;
  void affine_(const Context& c, Tensor& y, float scale, float shift) override;
  void clamp_(const Context& c, Tensor& y, float lo, float hi) override;
  Tensor modulate(const Context& c, const Tensor& x, const Tensor& shift,
                  const Tensor& scale) override;
  void gated_add_(const Context& c, Tensor& y, const Tensor& x, const Tensor* gate) override;
  void softmax_(const Context& c, Tensor& x) override;
  void round_bf16_(const Context& c, Tensor& x) override;
  void copy_(const Context& c, Tensor& dst, const Tensor& src) override;

  Tensor slice_cols(const Context& c, const Tensor& x, int64_t begin, int64_t end) override;
  Tensor concat_cols(const Context& c, const std::vector<Tensor>& parts) override;
  Tensor concat_rows(const Context& c, const std::vector<Tensor>& parts) override;
  Tensor embedding(const Context& c, const Tensor& table, const std::vector<int64_t>& ids) override;
  Tensor embedding(const Context& c, const Tensor& table, const Tensor& ids) override;
  Tensor argmax(const Context& c, const Tensor& x) override;
  Tensor mean_rows(const Context& c, const Tensor& x) override;
  Tensor permute(const Context& c, const Tensor& x, const std::vector<int>& perm) override;
  Tensor crop(const Context& c, const Tensor& x, int64_t y0, int64_t y1, int64_t x0,
              int64_t x1) override;
  void accumulate_tile_(const Context& c, Tensor& out, const Tensor& tile, int64_t y0, int64_t x0,
                        const std::vector<float>& wy, const std::vector<float>& wx) override;
  Tensor upsample_nearest2x(const Context& c, const Tensor& x) override;
  Tensor grid_positions(const Context& c, int64_t h, int64_t w, float t) override;

  RopeTable rope_table(const Context& c, const Tensor& positions, const RopeFreqs& f) override;
  RopeTable rope_table(const Context& c, int64_t start, int64_t L, const RopeFreqs& f) override;
  void rope_(const Context& c, Tensor& x, int heads, const RopeTable& t,
             RopeLayout layout) override;

  Tensor attention(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v, int q_heads,
                   int kv_heads, float scale, bool causal) override;

  RopeTable rope_table_at(const Context& c, const Tensor& pos, int64_t L,
                          const RopeFreqs& f) override;
  void copy_rows_at_(const Context& c, Tensor& dst, const Tensor& src, const Tensor& pos) override;
  Tensor attention_at(const Context& c, const Tensor& q, const Tensor& k, const Tensor& v,
                      const Tensor& pos, int q_heads, int kv_heads, float scale) override;

  Tensor conv2d(const Context& c, const Tensor& x, const ConvWeights& w, const Conv2dParams& p,
                const ConvPrologue& prologue) override;

  Tensor timestep_embedding(const Context& c, float t, int dim, float max_period) override;
  void guided_euler_step_(const Context& c, Tensor& img, const std::vector<Tensor>& v, Guidance g,
                          float s0, float s1, float dt, Tensor* guided) override;
  Tensor image_to_u8(const Context& c, const Tensor& x) override;
  Tensor randn_torch_cuda(const Context& c, const Shape& shape, uint64_t seed) override;

  GemmPlans& gemm_plans() { return *gemm_; }
  ConvPlans& conv_plans() { return *conv_; }

 private:
  // conv2d without a prologue, on a whole (band) input: conv.cpp.
  Tensor conv2d_plain(const Context& c, const Tensor& x, const ConvWeights& w,
                      const Conv2dParams& p);
  friend struct ConvBands;

  int threads_;
  size_t band_bytes_;
  std::unique_ptr<GemmPlans, void (*)(GemmPlans*)> gemm_;
  std::unique_ptr<ConvPlans, void (*)(ConvPlans*)> conv_;
};

// Thread count for `requested` (<= 0: OMP_NUM_THREADS if set, else all cores).
int resolve_threads(int requested);
bool has_avx512_bf16();

}  // namespace ovis::ops::cpu
