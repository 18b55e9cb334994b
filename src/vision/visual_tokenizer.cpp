#include "vision/visual_tokenizer.hpp"

#include "core/error.hpp"
#include "ops/ops.hpp"

namespace ovis {

namespace {
constexpr int kIndicatorSlots = 4;          // head outputs vocab_size - 4 logits (spec §2.3)
constexpr float kHeadLayerNormEps = 1e-5f;  // torch.nn.LayerNorm default (spec §4.5, §9.2)
}  // namespace

VisualTokenizer VisualTokenizer::load(WeightBinder& wb, const ops::Context& ctx,
                                      const ModelConfig& cfg) {
  const VisualTokenizerConfig& vc = cfg.visual_tokenizer;
  if (vc.hidden_stride != vc.backbone.hidden_stride)
    fail("config.json: visual_tokenizer_config.hidden_stride (", vc.hidden_stride,
         ") differs from backbone_config.hidden_stride (", vc.backbone.hidden_stride, ")");
  VisualTokenizer t;
  t.ctx_ = ctx;
  t.backbone_ = AimV2::load(wb, ctx, vc.backbone, "visual_tokenizer.backbone.");
  t.vocab_ = vc.vocab_size;
  t.merge_ = vc.hidden_stride * vc.hidden_stride;
  const int64_t V4 = t.vocab_ - kIndicatorSlots;
  t.head_ = nn::Linear::bind(wb, ctx, "visual_tokenizer.head.0", V4,
                             int64_t(t.merge_) * vc.backbone.hidden_size, /*bias=*/false);
  t.head_ln_ = nn::LayerNorm::bind(wb, ctx, "visual_tokenizer.head.1", V4, kHeadLayerNormEps);
  t.vte_ = nn::bind_stored(wb, ctx, "vte.weight", {t.vocab_, int64_t(cfg.hidden_size)});
  return t;
}

Tensor VisualTokenizer::head_logits(const Tensor& features) const {
  OVIS_ASSERT(features.ndim() == 2 && features.dim(0) % merge_ == 0);
  // Each run of merge_ consecutive rows is one merge cell (§4.5 step 1): a row-major reshape.
  const Tensor merged = features.reshape({features.dim(0) / merge_, features.dim(1) * merge_});
  return head_ln_(ctx_, head_(ctx_, merged));
}

Tensor VisualTokenizer::embed_probs(const Tensor& probs) const {
  // probs padded with 4 zero columns @ vte == probs @ vte[0 : V-4] (§4.5 steps 4-5).
  OVIS_ASSERT(probs.ndim() == 2 && probs.dim(1) == vocab_ - kIndicatorSlots);
  return ops::matmul(ctx_, probs, vte_.slice_rows(0, vocab_ - kIndicatorSlots));
}

Tensor VisualTokenizer::encode(const Tensor& pixel_values, int grid_h, int grid_w,
                               VisionTrace* trace) const {
  const Tensor features = backbone_.forward(pixel_values, grid_h, grid_w, trace);
  Tensor p = head_logits(features);
  if (trace) trace->head_logits = p.clone();
  ops::softmax_(ctx_, p);  // float32 (§4.5 step 3)
  if (trace) trace->probs = p;
  return embed_probs(p);
}

Tensor VisualTokenizer::vte_row(int64_t r) const {
  if (r < 0 || r >= vocab_) fail("visual tokenizer: vte row ", r, " outside [0, ", vocab_, ")");
  return ops::embedding(ctx_, vte_, {r});
}

}  // namespace ovis
