// `ovis bench`: speed of each stage at the real Ovis-U1-3B shapes, with synthetic bf16 weights
// built in memory (no checkpoint file needed). Prints one JSON object per run on stdout.
#include <sys/resource.h>

#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "gen/denoise.hpp"
#include "gen/latents.hpp"
#include "gen/rng.hpp"
#include "gen/schedule.hpp"
#include "gen/vae.hpp"
#include "gen/yak_dit.hpp"
#include "io/config.hpp"
#include "io/weight_binder.hpp"
#include "llm/kv_cache.hpp"
#include "llm/qwen3.hpp"
#include "llm/token_decoder.hpp"
#include "ops/backend.hpp"
#include "ops/ops.hpp"
#include "pipeline/model_source.hpp"
#include "pipeline/quantize.hpp"
#include "real_config.hpp"
#include "vision/preprocess.hpp"
#include "vision/visual_tokenizer.hpp"

namespace ovis::cli {

namespace {

struct BenchOptions {
  std::string what;
  std::string type = "bf16";  // weight type of the synthetic matrices
  std::string model;          // optional: weights from a folder or GGUF instead
  bool json = false;
  int size = 512;
  int prompt_tokens = 512;
  int decode_tokens = 32;
  int text_tokens = 300;
  int repeat = 1;
  int steps = 1;
  int warmup = 0;
};

double peak_rss_gb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_maxrss) / (1024.0 * 1024.0);
}

double seconds(const timeval& t) {
  return double(t.tv_sec) + 1e-6 * double(t.tv_usec);
}

// User and system CPU time of the timed regions only (getrusage), summed over start/stop pairs.
class CpuMeter {
 public:
  void start() { getrusage(RUSAGE_SELF, &begin_); }
  void stop() {
    rusage end{};
    getrusage(RUSAGE_SELF, &end);
    user_ += seconds(end.ru_utime) - seconds(begin_.ru_utime);
    sys_ += seconds(end.ru_stime) - seconds(begin_.ru_stime);
  }
  // system ÷ (user + system): time the kernel spent for us (page faults, zeroing, munmap).
  double sys_fraction() const { return user_ + sys_ > 0 ? sys_ / (user_ + sys_) : 0.0; }

 private:
  rusage begin_{};
  double user_ = 0, sys_ = 0;
};

// The backend every benchmark runs on, with --device, --precision and -t applied.
struct BenchEnv {
  std::unique_ptr<ops::Backend> backend;
  ops::Context ctx;
  CpuMeter cpu;

  explicit BenchEnv(const GlobalOptions& g) {
    const LoadOptions lo = load_options(g);
    ops::BackendOptions bo;
    bo.threads = lo.threads;
    backend = ops::make_backend(
        lo.device == "auto" ? ops::default_device() : Device::parse(lo.device), bo);
    ctx = ops::Context{backend.get(), ops::resolve(lo.precision, backend->device())};
  }
  // Fields every benchmark reports. On a GPU, peak_vram_gb is the high-water mark of the
  // device's allocator (weights + activations + workspaces, as torch.cuda.max_memory_allocated
  // counts), device_used_gb what the device reports in use at the end (CUDA context and the
  // allocator's cached blocks included, as nvidia-smi shows).
  nlohmann::json common() const {
    backend->synchronize();
    const AllocatorStats a = backend->allocator().stats();
    nlohmann::json r = {{"device", backend->device().str()},
                        {"backend", backend->name()},
                        {"precision", precision_name(ctx.precision)},
                        {"threads", backend->threads()},
                        {"cpu_sys_fraction", cpu.sys_fraction()},
                        {"peak_alloc_gb", double(a.peak) / 1e9},
                        {"peak_rss_gb", peak_rss_gb()}};
    if (!backend->device().is_host()) {
      r["peak_vram_gb"] = double(a.peak) / 1e9;
      for (const ops::DeviceInfo& d : ops::list_devices())
        if (d.device == backend->device())
          r["device_used_gb"] = double(d.total_memory - d.free_memory) / 1e9;
    }
    return r;
  }
};

// Seconds of each stage of one whole t2i/edit flow.
struct FlowTimes {
  double condition_s = 0, denoise_s = 0, decode_s = 0;
};

// The LLM condition of `text_len` random token ids followed by an image's visual tokens (the
// flows' text conditions hold --text-tokens in all, the image's tokens included).
Tensor text_condition(const BenchOptions& o, const Qwen3& llm, std::mt19937& gen, int64_t text_len,
                      const Tensor& visual) {
  if (text_len < 1)
    fail("--text-tokens ", o.text_tokens, " must exceed the ", visual.dim(0),
         " visual tokens of the condition image");
  std::vector<int64_t> ids(static_cast<size_t>(text_len));
  for (auto& id : ids) id = int64_t(gen() % 150000);
  return llm.condition(ops::concat_rows(llm.context(), {llm.embed(ids), visual}));
}

// Ranges every benchmark shares (sizes are checked per benchmark: their multiples differ).
void check_options(const BenchOptions& o) {
  const int min_repeat = o.what == "dit" ? 0 : 1;  // dit --repeat 0: the cold forward only
  if (o.repeat < min_repeat || o.repeat > 1000)
    fail("--repeat must be between ", min_repeat, " and 1000 for bench ", o.what);
  if (o.prompt_tokens < 1 || o.prompt_tokens > (1 << 20))
    fail("--prompt-tokens must be between 1 and ", 1 << 20);
  if (o.text_tokens < 1 || o.text_tokens > (1 << 20))
    fail("--text-tokens must be between 1 and ", 1 << 20);
  if (o.steps < 1 || o.steps > 1000) fail("--steps must be between 1 and 1000");
  if (o.decode_tokens < 2 || o.decode_tokens > (1 << 20))
    fail("--decode-tokens must be between 2 and ", 1 << 20);
}

// Runs `flow` --warmup times with one denoising step (first-call work such as GEMM and
// convolution plans, module loading and the allocator's first blocks, at the same shapes), then
// once timed with --steps, the allocator's peak counted from there (weights included).
// The CPU meter covers the timed run only.
FlowTimes timed_flow(const BenchOptions& o, BenchEnv& env,
                     const std::function<FlowTimes(int steps)>& flow) {
  for (int i = 0; i < o.warmup; ++i) flow(1);
  env.backend->synchronize();
  env.backend->allocator().reset_peak();
  env.cpu.start();
  const FlowTimes f = flow(o.steps);
  env.cpu.stop();
  return f;
}

// The report of a whole-flow benchmark (t2i, edit): the stage times of the timed run.
nlohmann::json flow_report(const char* bench, const BenchOptions& o, const BenchEnv& env,
                           const WeightBinder& wb, double build_s, const FlowTimes& ft) {
  nlohmann::json r = env.common();
  r.update({{"bench", bench},
            {"model", "Ovis-U1-3B shapes, synthetic bf16 weights, random prompt ids"},
            {"size", o.size},
            {"steps", o.steps},
            {"weights_gb", double(wb.bound_bytes()) / 1e9},
            {"build_s", build_s},
            {"warmup_runs", o.warmup},
            {"condition_s", ft.condition_s},
            {"denoise_s", ft.denoise_s},
            {"s_per_step", ft.denoise_s / o.steps},
            {"vae_decode_s", ft.decode_s},
            {"total_s", ft.condition_s + ft.denoise_s + ft.decode_s}});
  return r;
}

// Host tensor of N(0, scale²) values (benchmark inputs).
Tensor random_tensor(const Shape& s, uint32_t seed, float scale) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  Tensor t = Tensor::empty(s);
  float* p = t.mutable_f32();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(g);
  return t;
}

// The weights of a benchmark: synthetic of the real shapes (matrices converted to --type in
// memory with the per-tensor choices of `ovis quantize`), or those of -m.
struct BenchWeights {
  std::unique_ptr<TensorStore> store;
  WeightBinder binder = WeightBinder::synthetic(0);
  std::string what;
  BenchWeights(const BenchOptions& o, uint64_t seed) {
    if (!o.model.empty()) {
      store = std::make_unique<TensorStore>(ModelSource::open(o.model).tensors());
      binder = WeightBinder(*store);
      what = "weights of " + o.model;
      return;
    }
    binder = WeightBinder::synthetic(seed);
    DType t;
    if (!parse_weight_type(o.type, &t))
      fail("--type: unknown type '", o.type, "' (f32, f16, bf16, q8_0, q4_k)");
    if (t != DType::BF16)
      binder.set_matrix_type([t](const std::string& name, const Shape& shape) {
        return plan_tensor_type(name, shape, DType::BF16, t, {}, nullptr);
      });
    what = "synthetic weights, matrices " + weight_type_name(t);
  }
};

ModelConfig real_config() {
  return parse_model_config_text(kOvisU1_3B_Config, "built-in Ovis-U1-3B config", std::nullopt, "");
}

nlohmann::json bench_llm(const BenchOptions& o, const ModelConfig& cfg, BenchEnv& env) {
  Timer t;
  BenchWeights bw(o, 1);
  WeightBinder& wb = bw.binder;
  Qwen3 llm = Qwen3::load(wb, env.ctx, cfg.llm);
  const double build_s = t.seconds();
  const double weight_bytes = double(wb.bound_bytes());
  const LlmConfig& c = cfg.llm;
  // Weights read per decoded token: every layer + the tied LM head (= embedding table).
  const double layer_params =
      double(c.num_layers) *
      (double(c.hidden_size) * (c.num_heads + 2 * c.num_kv_heads) * c.head_dim +
       double(c.num_heads) * c.head_dim * c.hidden_size +
       3.0 * c.hidden_size * c.intermediate_size);
  const double head_params = double(c.vocab_size) * c.hidden_size;
  std::mt19937 g(7);
  std::vector<int64_t> ids(size_t(o.prompt_tokens));
  for (auto& id : ids) id = int64_t(g() % 150000);

  const int64_t capacity = o.prompt_tokens + o.decode_tokens + 1;
  // The first prefill is timed apart: it also pays for first use (GEMM plans, and the kernel
  // faulting in fresh pages for the KV cache and every activation buffer). Later requests reuse
  // those blocks from the caching allocator, as a server does; prefill_s is the best of
  // --repeat such warm runs (llama-bench likewise times after a warm-up run).
  auto prefill = [&](KvCache& cache) {
    Tensor h = llm.forward(llm.embed(ids), cache);
    Tensor logits = llm.logits(h.slice_rows(h.dim(0) - 1, h.dim(0)));
    env.backend->synchronize();
    return logits;
  };
  double prefill_first_s = 0;
  {
    KvCache first = llm.make_cache(capacity);
    t.reset();
    prefill(first);
    prefill_first_s = t.seconds();
  }
  env.backend->allocator().reset_peak();
  env.cpu.start();
  KvCache cache = llm.make_cache(capacity);
  Tensor logits;
  double prefill_s = 1e30;
  for (int r = 0; r < o.repeat; ++r) {
    cache.clear();
    t.reset();
    logits = prefill(cache);
    prefill_s = std::min(prefill_s, t.seconds());
  }
  // Host sync point: greedy pick of the first token from the prefill.
  const Tensor row = logits.to(Device::cpu()).to_f32();
  int64_t next = int64_t(std::max_element(row.f32(), row.f32() + row.numel()) - row.f32());
  // Greedy decode as `ask` runs it: one recorded step replayed per token (the first call
  // records it and is timed apart).
  TokenDecoder decoder(llm, cache, /*greedy=*/true);
  t.reset();
  next = decoder.next_greedy(next);
  const double first_step_s = t.seconds();
  t.reset();
  for (int i = 1; i < o.decode_tokens; ++i) next = decoder.next_greedy(next);
  env.backend->synchronize();
  const double decode_s = t.seconds();
  const int decoded = std::max(1, o.decode_tokens - 1);
  env.cpu.stop();
  const double prefill_flops = 2.0 * layer_params * o.prompt_tokens + 2.0 * head_params;
  const double decode_tok_s = decoded / decode_s;
  nlohmann::json r = env.common();
  r.update({{"bench", "llm"},
            {"model", "Qwen3-1.7B shapes (Ovis-U1-3B llm), " + bw.what},
            {"weights_gb", weight_bytes / 1e9},
            {"build_s", build_s},
            {"prompt_tokens", o.prompt_tokens},
            {"prefill_first_s", prefill_first_s},
            {"prefill_s", prefill_s},
            {"prefill_tok_s", o.prompt_tokens / prefill_s},
            {"prefill_gflop_s", prefill_flops / prefill_s / 1e9},
            {"decode_tokens", decoded},
            {"decode_first_step_s", first_step_s},
            {"decode_s", decode_s},
            {"decode_tok_s", decode_tok_s},
            // Every bound weight (the tied head is the embedding table) is read once per token.
            {"decode_gb_s", weight_bytes * decode_tok_s / 1e9},
            {"decode_gflop_s", 2.0 * (layer_params + head_params) * decode_tok_s / 1e9}});
  return r;
}

nlohmann::json bench_vision(const BenchOptions& o, const ModelConfig& cfg, BenchEnv& env) {
  Timer t;
  WeightBinder wb = WeightBinder::synthetic(2);
  VisualTokenizer vt = VisualTokenizer::load(wb, env.ctx, cfg);
  const double build_s = t.seconds();
  const VisionConfig& b = cfg.visual_tokenizer.backbone;
  const int grid = 448 / b.patch_size;
  Tensor pixels = random_tensor({int64_t(grid) * grid, 3LL * b.patch_size * b.patch_size}, 3, 1.0f);
  vt.encode(pixels, grid, grid);  // warm-up: GEMM plans
  env.backend->allocator().reset_peak();
  double best = 1e30;
  for (int r = 0; r < o.repeat; ++r) {
    env.cpu.start();
    t.reset();
    Tensor e = vt.encode(pixels, grid, grid);
    env.backend->synchronize();
    best = std::min(best, t.seconds());
    env.cpu.stop();
  }
  nlohmann::json r = env.common();
  r.update({{"bench", "vision"},
            {"model",
             "AIMv2-L visual tokenizer + head + VTE (Ovis-U1-3B shapes), synthetic bf16 weights"},
            {"image", "448x448"},
            {"patches", grid * grid},
            {"visual_tokens", grid * grid / 4},
            {"build_s", build_s},
            {"vision_encode_s", best}});
  return r;
}

nlohmann::json bench_dit(const BenchOptions& o, const ModelConfig& cfg, BenchEnv& env) {
  if (o.size % 16 || o.size < 16) fail("--size must be a positive multiple of 16");
  Timer t;
  BenchWeights bw(o, 4);
  WeightBinder& wb = bw.binder;
  YakDiT dit = YakDiT::load(wb, env.ctx, cfg.dit);
  const double build_s = t.seconds();
  const int64_t side = o.size / 16;
  const Tensor img =
      ops::upload(env.ctx, random_tensor({side * side, cfg.dit.in_channels}, 5, 1.0f));
  const Tensor ids = latent_ids(env.ctx, side, side, 0.0f);
  const Tensor txt =
      ops::upload(env.ctx, random_tensor({o.text_tokens, cfg.dit.context_in_dim}, 6, 1.0f));
  double first = 0, best = 1e30;
  for (int r = 0; r <= o.repeat; ++r) {
    // The first (cold) forward is timed apart; the CPU meter covers the repeated ones.
    if (r == 1) env.backend->allocator().reset_peak();
    if (r > 0 || o.repeat < 1) env.cpu.start();
    t.reset();
    Tensor v = dit.forward(img, ids, txt, 0.5f);
    env.backend->synchronize();
    if (r > 0 || o.repeat < 1) env.cpu.stop();
    if (r == 0)
      first = t.seconds();
    else
      best = std::min(best, t.seconds());
  }
  if (o.repeat < 1) best = first;  // --repeat 0: only the first (cold) forward was run
  nlohmann::json r = env.common();
  r.update({{"bench", "dit"},
            {"model", "Yak MMDiT 1.1B (Ovis-U1-3B shapes), " + bw.what},
            {"weights_gb", double(wb.bound_bytes()) / 1e9},
            {"size", o.size},
            {"image_tokens", side * side},
            {"text_tokens", o.text_tokens},
            {"build_s", build_s},
            {"first_forward_s", first},
            {"dit_forward_s", best}});
  return r;
}

nlohmann::json bench_vae(const BenchOptions& o, const ModelConfig& cfg, BenchEnv& env) {
  if (o.size % 8 || o.size < 8) fail("--size must be a positive multiple of 8");
  Timer t;
  WeightBinder wb = WeightBinder::synthetic(8);
  // The VAE decoder always runs in fp32 whatever --precision says (spec §9.1).
  Vae vae = Vae::load(wb, env.ctx, cfg.vae);
  const double build_s = t.seconds();
  const Tensor z = ops::upload(
      env.ctx, random_tensor({cfg.vae.latent_channels, o.size / 8, o.size / 8}, 9, 1.0f));
  env.backend->allocator().reset_peak();
  double best = 1e30;
  for (int r = 0; r < o.repeat; ++r) {
    env.cpu.start();
    t.reset();
    Tensor x = vae.decode_auto(z);
    env.backend->synchronize();
    best = std::min(best, t.seconds());
    env.cpu.stop();
  }
  nlohmann::json r = env.common();
  r.update({{"bench", "vae"},
            {"model", "SDXL-type VAE decoder (Ovis-U1-3B shapes), synthetic bf16 weights"},
            {"precision", "f32 (the pipeline always decodes in fp32, spec 9.1)"},
            {"size", o.size},
            {"build_s", build_s},
            {"vae_decode_s", best}});
  return r;
}

// Packed latents -> fp32 VAE decode -> pixels on the host, as the pipeline finishes an image;
// returns the seconds it took.
double decode_to_pixels(const ops::Context& c, const Vae& vae, const ModelConfig& cfg,
                        const Tensor& packed, int height, int width) {
  Timer t;
  Tensor z = unpack_latents(c, packed, cfg.vae.latent_channels, height / 8, width / 8);
  ops::scale_(c, z, 1.0f / cfg.vae.scaling_factor);
  const Tensor x = vae.decode_auto(z);  // fp32, as the pipeline (spec §9.1)
  // Host sync point: the final image.
  const Tensor rgb = ops::image_to_u8(vae.decode_context(), x).to(Device::cpu());
  OVIS_ASSERT(rgb.numel() == int64_t(height) * width * 3);
  return t.seconds();
}

// The whole text-to-image flow at the real shapes (all four models resident, as in `generate`):
// white-image vision encode, two LLM conditions of ~text_tokens, `steps` Euler steps with CFG
// (2 DiT forwards each), fp32 VAE decode. Token ids are random (no tokenizer file needed); the
// point is the time per stage and the peak memory of a real-size run.
nlohmann::json bench_t2i(const BenchOptions& o, const ModelConfig& cfg, BenchEnv& env) {
  if (o.size % 16 || o.size < 16) fail("--size must be a positive multiple of 16");
  const ops::Context& c = env.ctx;
  Timer t;
  WeightBinder wb = WeightBinder::synthetic(12);
  VisualTokenizer vt = VisualTokenizer::load(wb, c, cfg);
  Qwen3 llm = Qwen3::load(wb, c, cfg.llm);
  YakDiT dit = YakDiT::load(wb, c, cfg.dit);
  Vae vae = Vae::load(wb, c, cfg.vae);
  const double build_s = t.seconds();
  std::mt19937 gen(13);
  auto condition = [&](const Tensor& visual, int64_t text_len) {
    return text_condition(o, llm, gen, text_len, visual);
  };
  const FlowTimes ft = timed_flow(o, env, [&](int steps) {
    FlowTimes f;
    t.reset();
    PreprocessedImage pre =
        preprocess_image(Image::filled(448, 448, 255, 255, 255), cfg.preprocessor);
    Tensor visual = vt.encode(pre.pixel_values, pre.grid_h, pre.grid_w);
    Tensor cond = condition(visual, o.text_tokens - visual.dim(0));
    Tensor uncond = condition(visual, 12);
    env.backend->synchronize();
    f.condition_s = t.seconds();
    t.reset();
    const int64_t h16 = o.size / 16;
    const Tensor img = pack_latents(
        c, ops::upload(c, gaussian_noise({cfg.vae.latent_channels, o.size / 8, o.size / 8}, 42)));
    Tensor out = denoise_t2i(dit, img, latent_ids(c, h16, h16, 0.0f), cond, uncond,
                             flow_schedule(steps, img.dim(0), cfg.dit), 5.0f);
    env.backend->synchronize();
    f.denoise_s = t.seconds();
    f.decode_s = decode_to_pixels(c, vae, cfg, out, o.size, o.size);
    return f;
  });
  return flow_report("t2i", o, env, wb, build_s, ft);
}

// The whole edit flow at the real shapes (as `edit`): three conditions (unconditional + white
// image, unconditional + input, instruction + input; each a vision encode of the pre-shrunk
// 448x448 image and an LLM pass), the VAE encode of the input (posterior mean), `steps` Euler
// steps with 3-pass CFG (the two image-conditioned passes over twice the image tokens), the fp32
// VAE decode and the conversion to pixels.
nlohmann::json bench_edit(const BenchOptions& o, const ModelConfig& cfg, BenchEnv& env) {
  if (o.size % 32 || o.size < 32) fail("--size must be a positive multiple of 32");
  const ops::Context& c = env.ctx;
  Timer t;
  WeightBinder wb = WeightBinder::synthetic(14);
  VisualTokenizer vt = VisualTokenizer::load(wb, c, cfg);
  Qwen3 llm = Qwen3::load(wb, c, cfg.llm);
  YakDiT dit = YakDiT::load(wb, c, cfg.dit);
  Vae vae = Vae::load(wb, c, cfg.vae);
  const double build_s = t.seconds();
  auto encode = [&](const Image& img) {
    PreprocessedImage pre = preprocess_image(img, cfg.preprocessor);
    return vt.encode(pre.pixel_values, pre.grid_h, pre.grid_w);
  };
  Image input = Image::filled(448, 448, 0, 0, 0);
  for (size_t i = 0; i < input.rgb.size(); ++i) input.rgb[i] = uint8_t((i * 37) % 251);
  std::mt19937 gen(15);
  auto condition = [&](int64_t text_len, const Tensor& visual) {
    return text_condition(o, llm, gen, text_len, visual);
  };
  const Tensor pixels = random_tensor({3, o.size, o.size}, 16, 0.5f);
  const FlowTimes ft = timed_flow(o, env, [&](int steps) {
    FlowTimes f;
    t.reset();
    const Tensor visual_white = encode(Image::filled(448, 448, 255, 255, 255));
    const Tensor visual_input = encode(input);
    const Tensor no_both = condition(12, visual_white);
    const Tensor no_txt = condition(12, visual_input);
    const Tensor cond_txt = condition(o.text_tokens - visual_input.dim(0), visual_input);
    // spec §7.3: conditioning latents = posterior mean · scaling, packed.
    Tensor z = vae.encode(pixels).mean;
    ops::scale_(c, z, cfg.vae.scaling_factor);
    const int64_t h16 = o.size / 16;
    const Tensor cond_latents = pack_latents(c, z);
    const Tensor cond_ids = latent_ids(c, h16, h16, 1.0f);
    env.backend->synchronize();
    f.condition_s = t.seconds();
    t.reset();
    const Tensor img = pack_latents(
        c, ops::upload(c, gaussian_noise({cfg.vae.latent_channels, o.size / 8, o.size / 8}, 42)));
    Tensor out =
        denoise_edit(dit, img, latent_ids(c, h16, h16, 0.0f), cond_txt, no_txt, no_both,
                     cond_latents, cond_ids, flow_schedule(steps, img.dim(0), cfg.dit), 6.0f, 1.5f);
    env.backend->synchronize();
    f.denoise_s = t.seconds();
    f.decode_s = decode_to_pixels(c, vae, cfg, out, o.size, o.size);
    return f;
  });
  return flow_report("edit", o, env, wb, build_s, ft);
}

int run_bench(const BenchOptions& o, const GlobalOptions& g) {
  check_options(o);
  BenchEnv env(g);
  const ModelConfig cfg = real_config();
  nlohmann::json r;
  if (o.what == "llm")
    r = bench_llm(o, cfg, env);
  else if (o.what == "vision")
    r = bench_vision(o, cfg, env);
  else if (o.what == "dit")
    r = bench_dit(o, cfg, env);
  else if (o.what == "vae")
    r = bench_vae(o, cfg, env);
  else if (o.what == "t2i")
    r = bench_t2i(o, cfg, env);
  else if (o.what == "edit")
    r = bench_edit(o, cfg, env);
  else
    fail("unknown benchmark '", o.what, "' (llm, vision, dit, vae, t2i, edit)");
  if (o.json) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    for (auto it = r.begin(); it != r.end(); ++it)
      std::printf("%-18s %s\n", it.key().c_str(), it.value().dump().c_str());
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench",
                                     "Measure a stage at the real Ovis-U1-3B shapes with synthetic "
                                     "weights (no checkpoint needed)");
  cmd->add_option("what", o->what,
                  "llm | vision | dit | vae | t2i | edit (t2i, edit: the whole flow)")
      ->required()
      ->check(CLI::IsMember({"llm", "vision", "dit", "vae", "t2i", "edit"}));
  cmd->add_flag("--json", o->json, "Print one JSON object on stdout");
  cmd->add_option("--type", o->type,
                  "llm/dit: weight type of the synthetic matrices, quantized in memory with the "
                  "per-tensor choices of 'ovis quantize' (f32, f16, bf16, q8_0, q4_k)")
      ->capture_default_str();
  cmd->add_option("-m,--model", o->model,
                  "llm/dit: use the weights of this folder or GGUF file instead of synthetic ones");
  cmd->add_option("--size", o->size, "dit/vae/t2i/edit: image side in pixels")
      ->capture_default_str();
  cmd->add_option("--steps", o->steps, "t2i/edit: denoising steps")->capture_default_str();
  cmd->add_option("--warmup", o->warmup,
                  "t2i/edit: untimed one-step runs of the whole flow first (first-call setup)")
      ->capture_default_str()
      ->check(CLI::Range(0, 10));
  cmd->add_option("--prompt-tokens", o->prompt_tokens, "llm: prefill length")
      ->capture_default_str();
  cmd->add_option("--decode-tokens", o->decode_tokens, "llm: tokens to decode")
      ->capture_default_str();
  cmd->add_option("--text-tokens", o->text_tokens, "dit/t2i/edit: condition length")
      ->capture_default_str();
  cmd->add_option(
         "--repeat", o->repeat,
         "Timed repetitions, 1-1000, the best reported (dit also takes 0: only the cold first "
         "forward)")
      ->capture_default_str();
  cmd->callback([o, &g, &exit_code] { exit_code = run_bench(*o, g); });
}

}  // namespace ovis::cli
