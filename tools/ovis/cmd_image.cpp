// `ovis generate` and `ovis edit` (spec §7).
#include <cstdio>
#include <filesystem>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "core/timer.hpp"
#include "ops/ops.hpp"
#include "ovis/ovis.hpp"

namespace ovis::cli {

namespace {

struct ImageOptions {
  std::string model, prompt, input, output = "output.png", init_noise, rng = "philox";
  int width = 1024, height = 1024, steps = 50, batch = 1;
  float cfg_scale = 5.0f, img_cfg_scale = 1.5f;
  int64_t seed = 42;
};

std::string lower_ext(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (auto& c : e) c = char(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

// Output path for image i: a printf pattern with one integer conversion (e.g. out_%03d.png),
// or, for batches without a pattern, "<stem>_<i><ext>".
std::string output_path(const std::string& pattern, int i, int batch) {
  size_t pct = pattern.find('%');
  if (pct != std::string::npos) {
    char buf[4096];
    std::snprintf(buf, sizeof buf, pattern.c_str(), i);
    return buf;
  }
  if (batch == 1) return pattern;
  std::filesystem::path p(pattern);
  return (p.parent_path() / (p.stem().string() + "_" + std::to_string(i) + p.extension().string()))
      .string();
}

void validate_output(const ImageOptions& o) {
  const std::string ext = lower_ext(o.output);
  if (ext != ".png" && ext != ".jpg" && ext != ".jpeg")
    fail("-o ", o.output, ": output must end in .png, .jpg or .jpeg");
  size_t pct = o.output.find('%');
  if (pct != std::string::npos) {
    // Exactly one integer conversion like %d or %03d, nothing else.
    size_t j = pct + 1;
    while (j < o.output.size() && std::isdigit(static_cast<unsigned char>(o.output[j]))) ++j;
    if (j >= o.output.size() || o.output[j] != 'd' || o.output.find('%', j) != std::string::npos)
      fail("-o ", o.output, ": the pattern may hold one integer conversion such as %03d");
  }
  if (o.batch < 1 || o.batch > 1000) fail("-b/--batch-count must be between 1 and 1000");
  std::filesystem::path dir =
      std::filesystem::path(output_path(o.output, 0, o.batch)).parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    fail("-o ", o.output, ": folder ", dir.string(), " does not exist");
}

int run_image(const ImageOptions& o, const GlobalOptions& g, bool edit) {
  validate_output(o);
  const NoiseRng rng = parse_noise_rng(o.rng);
  // The whole request is checked before the model is loaded; only the seed changes per image.
  EditRequest ereq;
  GenerateRequest greq;
  if (edit) {
    ereq.input = read_image(o.input);
    ereq.instruction = o.prompt;
    ereq.steps = o.steps;
    ereq.cfg_scale = o.cfg_scale;
    ereq.img_cfg_scale = o.img_cfg_scale;
    ereq.rng = rng;
    validate(ereq);
  } else {
    greq.prompt = o.prompt;
    greq.width = o.width;
    greq.height = o.height;
    greq.steps = o.steps;
    greq.cfg_scale = o.cfg_scale;
    greq.rng = rng;
    validate(greq);
  }
  std::optional<HostTensor> noise;
  if (!o.init_noise.empty()) noise = load_init_noise(o.init_noise);
  const uint64_t seed0 = resolve_seed(o.seed, g.quiet);
  const ResolvedModel model = resolve_model(o.model, g);  // may download (--pull): not "load"
  Timer t;
  auto pipe = Pipeline::load(model.folder, load_options(g));
  const std::string prec = precision_name(pipe->precision());
  const double load_s = t.seconds();
  ProgressBar bar(!g.quiet);
  ereq.init_noise = greq.init_noise = noise;
  ereq.on_progress = greq.on_progress = [&bar](const ProgressEvent& e) { bar(e); };
  for (int i = 0; i < o.batch; ++i) {
    const uint64_t seed = seed0 + uint64_t(i);
    ImageResult r;
    ImageParameters params;
    if (edit) {
      ereq.seed = seed;
      r = pipe->edit(ereq);
      params = image_parameters(ereq, r, model.name);
    } else {
      greq.seed = seed;
      r = pipe->generate(greq);
      params = image_parameters(greq, r, model.name);
    }
    if (!g.quiet)
      for (const auto& w : r.warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    const std::string path = output_path(o.output, i, o.batch);
    write_image(path, r.image, {{"parameters", parameters_text(params)}});
    if (!g.quiet)
      std::fprintf(stderr,
                   "saved %s (%dx%d, seed %llu) [%s, %d threads] load %.2f s | condition %.2f s | "
                   "denoise %.2f s (%.2f s/step) | vae decode %.2f s\n",
                   path.c_str(), r.width, r.height, static_cast<unsigned long long>(seed),
                   prec.c_str(), pipe->threads(), i == 0 ? load_s : 0.0, r.condition_s, r.denoise_s,
                   r.denoise_s / o.steps, r.decode_s);
  }
  return 0;
}

void add_common(CLI::App* cmd, ImageOptions& o) {
  cmd->add_option("-m,--model", o.model, kModelHelp);
  cmd->add_option(
         "-o,--output", o.output,
         "Output .png or .jpg; with -b N a pattern such as out_%03d.png (image i uses seed+i)")
      ->capture_default_str();
  cmd->add_option("--steps", o.steps, "Denoising steps (Euler, rectified flow)")
      ->capture_default_str();
  cmd->add_option("-s,--seed", o.seed, "Noise seed (negative = random, printed)")
      ->capture_default_str();
  cmd->add_option("--rng", o.rng,
                  "Noise generator: philox (this project's, the same image on every machine) or "
                  "torch-cuda (torch.randn on a CUDA generator seeded with -s, bf16: the "
                  "reference pipeline's noise for the same seed)")
      ->capture_default_str()
      ->check(CLI::IsMember({"philox", "torch-cuda"}));
  cmd->add_option("--init-noise", o.init_noise,
                  "Start from this float noise tensor [4,H/8,W/8] instead of the seeded generator: "
                  "FILE.safetensors[:TENSOR]");
}

}  // namespace

void add_image_commands(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto gen = std::make_shared<ImageOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate an image from a text prompt");
  add_common(cmd, *gen);
  cmd->add_option("-p,--prompt", gen->prompt, "What to draw")->required();
  cmd->add_option("-W,--width", gen->width, "Width in pixels (floored to a multiple of 16)")
      ->capture_default_str();
  cmd->add_option("-H,--height", gen->height, "Height in pixels (floored to a multiple of 16)")
      ->capture_default_str();
  cmd->add_option("--cfg-scale", gen->cfg_scale, "Text classifier-free guidance scale, 0-50")
      ->capture_default_str();
  cmd->add_option("-b,--batch-count", gen->batch, "Number of images (seed, seed+1, ...)")
      ->capture_default_str();
  cmd->callback([gen, &g, &exit_code] { exit_code = run_image(*gen, g, false); });

  auto ed = std::make_shared<ImageOptions>();
  ed->cfg_scale = 6.0f;
  CLI::App* ecmd = app.add_subcommand("edit",
                                      "Edit an image following an instruction (output size: the "
                                      "input's, rounded to multiples of 32)");
  add_common(ecmd, *ed);
  ecmd->add_option("-i,--input", ed->input, "Image to edit (PNG or JPEG)")->required();
  ecmd->add_option("-p,--prompt", ed->prompt, "The edit instruction")->required();
  ecmd->add_option("--cfg-scale", ed->cfg_scale, "Text classifier-free guidance scale, 0-50")
      ->capture_default_str();
  ecmd->add_option("--img-cfg-scale", ed->img_cfg_scale,
                   "Image classifier-free guidance scale, 0-50")
      ->capture_default_str();
  ecmd->callback([ed, &g, &exit_code] { exit_code = run_image(*ed, g, true); });
}

}  // namespace ovis::cli
