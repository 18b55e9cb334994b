// The three tasks of Ovis-U1, the only place where tokenizer, vision tower, LLM, DiT and VAE
// meet (spec §6, §7).
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.hpp"
#include "core/timer.hpp"
#include "gen/denoise.hpp"
#include "gen/latents.hpp"
#include "gen/rng.hpp"
#include "gen/schedule.hpp"
#include "gen/vae.hpp"
#include "gen/yak_dit.hpp"
#include "io/config.hpp"
#include "io/safetensors.hpp"
#include "io/weight_binder.hpp"
#include "llm/kv_cache.hpp"
#include "llm/qwen3.hpp"
#include "llm/token_decoder.hpp"
#include "llm/token_sampler.hpp"
#include "ops/backend.hpp"
#include "ops/ops.hpp"
#include "ovis/ovis.hpp"
#include "pipeline/chat_prompt.hpp"
#include "pipeline/components.hpp"
#include "pipeline/condition.hpp"
#include "pipeline/multimodal.hpp"
#include "pipeline/text_streamer.hpp"
#include "text/conversation.hpp"
#include "text/tokenizer.hpp"
#include "vision/condition_image.hpp"
#include "vision/preprocess.hpp"
#include "vision/resize.hpp"
#include "vision/visual_tokenizer.hpp"

namespace ovis {

namespace {

// spec §7.2: the edit output size is smart_resize(factor 32) with the default pixel bounds.
constexpr int kEditSizeFactor = 32;

void check_cancel(const CancelFn& should_cancel) {
  if (should_cancel && should_cancel()) throw Cancelled();
}

// A stage boundary: progress, then the cancellation check (the progress callback may have run
// other work in between).
void report(const ProgressFn& fn, const CancelFn& cancel, const std::string& stage, int step,
            int total, const Timer& t) {
  if (fn) fn(ProgressEvent{stage, step, total, t.seconds()});
  check_cancel(cancel);
}

Device resolve_device(const std::string& name) {
  return name == "auto" ? ops::default_device() : Device::parse(name);
}

std::unique_ptr<ops::Backend> make_backend(const LoadOptions& o) {
  ops::BackendOptions bo;
  bo.threads = o.threads;
  return ops::make_backend(resolve_device(o.device), bo);
}

class OvisPipeline final : public Pipeline {
 public:
  OvisPipeline(const std::string& dir, const LoadOptions& o)
      : backend_(make_backend(o)),
        ctx_{backend_.get(), ops::resolve(o.precision, backend_->device())},
        c_(dir, ctx_) {}

  const std::string& model_dir() const override { return c_.dir; }
  std::string device_name() const override { return backend_->device().str(); }
  Precision precision() const override { return ctx_.precision; }
  int threads() const override { return backend_->threads(); }
  MemoryStats memory() const override {
    const AllocatorStats s = backend_->allocator().stats();
    return {s.in_use, s.peak, s.cached};
  }

  AskResult ask(const AskRequest& req) override {
    if (req.prompt.empty() && req.images.empty()) fail("empty prompt: give -p TEXT and/or --image");
    // One user message [image..., text]: chat formats it with ask_query (ChatMessage).
    ChatRequest chat_req;
    if (!req.system.empty())
      chat_req.messages.push_back(ChatMessage{ChatRole::System, {ChatPart{req.system, {}}}});
    ChatMessage& m = chat_req.messages.emplace_back();
    for (const Image& img : req.images) m.content.push_back(ChatPart{{}, img});
    if (!req.prompt.empty() || req.images.empty()) m.content.push_back(ChatPart{req.prompt, {}});
    chat_req.max_new_tokens = req.max_new_tokens;
    chat_req.sampling = req.sampling;
    chat_req.on_text = req.on_text;
    chat_req.on_progress = req.on_progress;
    chat_req.should_cancel = req.should_cancel;
    return chat(chat_req);
  }

  AskResult chat(const ChatRequest& req) override {
    if (req.max_new_tokens <= 0) fail("--max-tokens must be positive");
    validate(req.sampling);
    check_cancel(req.should_cancel);
    AskResult res;
    Timer t;
    const ChatTurns chat = chat_turns(req.messages);
    FormattedPrompt fp = format_conversation(c_.tok, chat.turns, std::string());
    if (fp.num_images() != int(chat.images.size()))
      fail("the prompt has ", fp.num_images(), " <image> markers but ", chat.images.size(),
           " images were given");
    const int n_images = int(chat.images.size());
    std::vector<Tensor> visual;
    for (int i = 0; i < n_images; ++i) {
      report(req.on_progress, req.should_cancel, "vision", i, n_images, t);
      visual.push_back(c_.encode_image(*chat.images[size_t(i)]));
    }
    report(req.on_progress, req.should_cancel, "vision", n_images, n_images, t);
    Tensor embeds =
        merge_multimodal(fp.input_ids, visual, c_.llm, c_.vt, c_.cfg.multimodal_max_length);
    res.vision_s = t.seconds();
    res.prompt_tokens = int(embeds.dim(0));

    t.reset();
    KvCache cache = c_.llm.make_cache(embeds.dim(0) + req.max_new_tokens);
    Tensor hidden = c_.llm.forward(embeds, cache);
    Tensor logits = c_.llm.logits(hidden.slice_rows(hidden.dim(0) - 1, hidden.dim(0)));
    res.prefill_s = t.seconds();

    t.reset();
    TokenSampler sampler(req.sampling);
    TextStreamer streamer(c_.tok, req.stop, req.on_text);
    const int64_t vocab = logits.dim(-1);
    // Greedy steps pick the token on the device (TokenSampler's rule); sampling reads the row.
    const bool greedy = req.sampling.temperature == 0 || req.sampling.top_k == 1;
    TokenDecoder decoder(c_.llm, cache, greedy);
    // Host sync point: the first token, from the prefill's last row of logits.
    int64_t next = sampler.sample(host_logits(logits).f32(), vocab);
    res.finish_reason = FinishReason::Length;
    for (int i = 0; i < req.max_new_tokens; ++i) {
      check_cancel(req.should_cancel);
      if (next == c_.eos_id) {
        res.finish_reason = FinishReason::Stop;
        break;
      }
      res.tokens.push_back(int32_t(next));
      if (!streamer.push(res.tokens, false)) {
        res.finish_reason = FinishReason::Stop;
        break;
      }
      if (i + 1 == req.max_new_tokens) break;
      // Host sync point: sampling reads the logits row on the host.
      next = greedy ? decoder.next_greedy(next)
                    : sampler.sample(decoder.next_logits(next).f32(), vocab);
    }
    streamer.push(res.tokens, true);
    res.decode_s = t.seconds();
    res.text = streamer.text();
    return res;
  }

  ImageResult generate(const GenerateRequest& req) override {
    validate(req);
    ImageResult res;
    const int W = req.width / 16 * 16, H = req.height / 16 * 16;
    if (W != req.width || H != req.height)
      res.warnings.push_back(str("size ", req.width, "x", req.height,
                                 " is not a multiple of 16; generating ", W, "x", H));
    Tensor noise = initial_noise(req.init_noise, req.seed, req.rng, H, W);  // validated first
    Timer t;
    // spec §7.2: T2I conditions on a blank white image of the requested size.
    const Image white = Image::filled(req.width, req.height, 255, 255, 255);
    const CancelFn& cancel = req.should_cancel;
    report(req.on_progress, cancel, "condition", 0, 2, t);
    Tensor cond = condition(t2i_condition_query(req.prompt), white, req.width, req.height);
    report(req.on_progress, cancel, "condition", 1, 2, t);
    Tensor uncond = condition(unconditional_query(), white, req.width, req.height);
    report(req.on_progress, cancel, "condition", 2, 2, t);
    res.condition_s = t.seconds();

    t.reset();
    const Tensor img = pack_latents(ctx_, ops::upload(ctx_, noise));
    const Tensor ids = latent_ids(ctx_, H / 16, W / 16, 0.0f);
    std::vector<float> ts = flow_schedule(req.steps, img.dim(0), c_.cfg.dit);
    Tensor out = denoise_t2i(c_.dit, img, ids, cond, uncond, ts, req.cfg_scale,
                             step_reporter(req.on_progress, cancel, "denoise", t));
    res.denoise_s = t.seconds();
    finish(out, H, W, req.on_progress, cancel, res);
    return res;
  }

  ImageResult edit(const EditRequest& req) override {
    validate(req);
    ImageResult res;
    const ImageSize sz = smart_resize(req.input.height, req.input.width, kEditSizeFactor);
    const int W = sz.width, H = sz.height;
    if (W != req.input.width || H != req.input.height)
      res.warnings.push_back(str("input ", req.input.width, "x", req.input.height, " is edited at ",
                                 W, "x", H, " (multiple of 32, reference size rule)"));
    Tensor noise = initial_noise(req.init_noise, req.seed, req.rng, H, W);  // validated first
    Timer t;
    const Image resized = resize_bicubic(req.input, W, H);
    const Image white = Image::filled(W, H, 255, 255, 255);
    const CancelFn& cancel = req.should_cancel;
    report(req.on_progress, cancel, "condition", 0, 3, t);
    Tensor no_both = condition(unconditional_query(), white, W, H);
    report(req.on_progress, cancel, "condition", 1, 3, t);
    Tensor no_txt = condition(unconditional_query(), resized, W, H);
    report(req.on_progress, cancel, "condition", 2, 3, t);
    Tensor cond_txt = condition(edit_condition_query(req.instruction), resized, W, H);
    report(req.on_progress, cancel, "condition", 3, 3, t);
    // spec §7.3: conditioning latents = VAE posterior (we use the mean) * scaling, packed 2x2.
    ConditionImage ci = process_image_aspectratio(resized, W, H);
    Vae::Posterior post = c_.vae.encode(ci.vae_pixel_values);
    Tensor z = post.mean;
    if (c_.cfg.vae.has_shift) ops::affine_(ctx_, z, 1.0f, -c_.cfg.vae.shift_factor);
    ops::scale_(ctx_, z, c_.cfg.vae.scaling_factor);
    const Tensor cond_latents = pack_latents(ctx_, z);
    const Tensor cond_ids = latent_ids(ctx_, H / 16, W / 16, 1.0f);
    res.condition_s = t.seconds();

    t.reset();
    const Tensor img = pack_latents(ctx_, ops::upload(ctx_, noise));
    const Tensor ids = latent_ids(ctx_, H / 16, W / 16, 0.0f);
    std::vector<float> ts = flow_schedule(req.steps, img.dim(0), c_.cfg.dit);
    Tensor out = denoise_edit(c_.dit, img, ids, cond_txt, no_txt, no_both, cond_latents, cond_ids,
                              ts, req.cfg_scale, req.img_cfg_scale,
                              step_reporter(req.on_progress, cancel, "denoise", t));
    res.denoise_s = t.seconds();
    finish(out, H, W, req.on_progress, cancel, res);
    return res;
  }

 private:
  Tensor condition(const std::string& query, const Image& image, int W, int H) {
    return build_condition(c_, query, image, W, H);
  }

  // Host or device tensor [latent_channels, H/8, W/8] (ops::upload takes either).
  Tensor initial_noise(const std::optional<HostTensor>& given, uint64_t seed, NoiseRng rng, int H,
                       int W) const {
    const Shape want{c_.cfg.vae.latent_channels, H / 8, W / 8};
    // spec §7.3, §9.6: the reference draws [1, C, H/8, W/8]; the same elements in the same order.
    if (!given && rng == NoiseRng::TorchCuda) return ops::randn_torch_cuda(ctx_, want, seed);
    if (!given) return gaussian_noise(want, seed);
    if (int64_t(given->data.size()) != shape_numel(given->shape))
      fail("--init-noise: ", given->data.size(), " values for shape ", shape_str(given->shape));
    Tensor n = Tensor::from_vector(given->data, given->shape);
    if (n.ndim() == 4 && n.dim(0) == 1) n = n.reshape({n.dim(1), n.dim(2), n.dim(3)});
    if (n.shape() != want)
      fail("--init-noise tensor has shape ", shape_str(given->shape), ", expected ",
           shape_str(want), " for a ", W, "x", H, " image");
    return n;
  }

  // The sampler calls this after every step; throwing Cancelled from it ends the task.
  static StepCallback step_reporter(const ProgressFn& fn, const CancelFn& cancel,
                                    const std::string& stage, const Timer& t) {
    if (!fn && !cancel) return nullptr;
    return [&fn, &cancel, stage, &t](int step, int total) {
      report(fn, cancel, stage, step, total, t);
    };
  }

  // Host sync point: a row of logits as f32 on the host.
  static Tensor host_logits(const Tensor& logits) {
    const Tensor h = logits.to(Device::cpu());
    return h.dtype() == DType::F32 ? h : h.to_f32();
  }

  void finish(const Tensor& packed, int H, int W, const ProgressFn& progress,
              const CancelFn& cancel, ImageResult& res) {
    Timer t;
    report(progress, cancel, "vae decode", 0, 1, t);
    Tensor z = unpack_latents(ctx_, packed, c_.cfg.vae.latent_channels, H / 8, W / 8);
    // spec §7.11: z / scaling (+ shift when the config has one).
    ops::scale_(ctx_, z, 1.0f / c_.cfg.vae.scaling_factor);
    if (c_.cfg.vae.has_shift) ops::affine_(ctx_, z, 1.0f, c_.cfg.vae.shift_factor);
    // spec §9.1: the VAE decodes in fp32 (its own context) even when the rest runs in bf16.
    const Tensor x = c_.vae.decode_auto(z);
    // Host sync point: the final image.
    res.image =
        image_from_tensor_u8(ops::image_to_u8(c_.vae.decode_context(), x).to(Device::cpu()));
    res.width = W;
    res.height = H;
    res.decode_s = t.seconds();
    if (progress) progress(ProgressEvent{"vae decode", 1, 1, t.seconds()});
  }

  std::unique_ptr<ops::Backend> backend_;
  ops::Context ctx_;
  Components c_;
};

}  // namespace

std::unique_ptr<Pipeline> Pipeline::load(const std::string& model_dir, const LoadOptions& opts) {
  return std::make_unique<OvisPipeline>(model_dir, opts);
}

}  // namespace ovis
