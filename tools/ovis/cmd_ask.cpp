// `ovis ask`: answer a question about zero or more images (spec §6).
#include <cstdio>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "ops/ops.hpp"
#include "ovis/ovis.hpp"

namespace ovis::cli {

namespace {

struct AskOptions {
  std::string model;
  std::vector<std::string> images;
  std::string prompt;
  std::string system;
  int max_tokens = 512;
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  int64_t seed = -1;
};

int run_ask(const AskOptions& o, const GlobalOptions& g) {
  if (o.prompt.empty() && o.images.empty()) fail("empty prompt: give -p TEXT and/or --image PATH");
  if (o.max_tokens <= 0) fail("--max-tokens must be positive");
  SamplerParams sampling;
  sampling.temperature = o.temperature;
  sampling.top_k = o.top_k;
  sampling.top_p = o.top_p;
  validate(sampling);  // before the model is loaded
  std::vector<Image> images;
  for (const auto& p : o.images) images.push_back(read_image(p));
  const ResolvedModel model = resolve_model(o.model, g);  // may download (--pull): not "load"
  Timer t;
  auto pipe = Pipeline::load(model.folder, load_options(g));
  const std::string prec = precision_name(pipe->precision());
  const double load_s = t.seconds();
  AskRequest req;
  req.prompt = o.prompt;
  req.system = o.system;
  req.images = std::move(images);
  req.max_new_tokens = o.max_tokens;
  req.sampling = sampling;
  req.sampling.seed = o.temperature > 0 ? resolve_seed(o.seed, g.quiet) : 0;
  req.on_text = [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  AskResult r = pipe->ask(req);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!g.quiet) {
    const int n = int(r.tokens.size());
    std::fprintf(
        stderr,
        "\n[%s, %d threads] load %.2f s | vision %.2f s (%zu image%s) | prefill %d tok %.2f s "
        "(%.1f tok/s) | decode %d tok %.2f s (%.2f tok/s)\n",
        prec.c_str(), pipe->threads(), load_s, r.vision_s, o.images.size(),
        o.images.size() == 1 ? "" : "s", r.prompt_tokens, r.prefill_s,
        r.prefill_s > 0 ? r.prompt_tokens / r.prefill_s : 0.0, n, r.decode_s,
        r.decode_s > 0 ? n / r.decode_s : 0.0);
  }
  return 0;
}

}  // namespace

void add_ask_command(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto o = std::make_shared<AskOptions>();
  CLI::App* cmd = app.add_subcommand(
      "ask", "Answer a question about images (or chat without images). The answer goes to stdout.");
  cmd->add_option("-m,--model", o->model, kModelHelp);
  cmd->add_option("--image", o->images,
                  "Image file (PNG or JPEG); repeat for several. Placed before the prompt unless "
                  "the prompt has <image> markers");
  cmd->add_option("-p,--prompt", o->prompt, "The question");
  cmd->add_option("--system", o->system,
                  "System prompt: a system turn before the question (none by default, as in the "
                  "reference)");
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Maximum new tokens")->capture_default_str();
  cmd->add_option("--temp", o->temperature,
                  "Sampling temperature (0 = greedy, the reference's setting)")
      ->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "Top-k sampling (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "Top-p (nucleus) sampling")->capture_default_str();
  cmd->add_option("-s,--seed", o->seed, "Sampling seed (negative = random)")->capture_default_str();
  cmd->callback([o, &g, &exit_code] { exit_code = run_ask(*o, g); });
}

}  // namespace ovis::cli
