// `ovis quantize`: a model folder (or GGUF) rewritten as one GGUF file in a chosen weight type.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/progress.hpp"
#include "pipeline/model_source.hpp"
#include "pipeline/quantize.hpp"
#include "real_config.hpp"

namespace ovis::cli {

namespace {

struct QuantizeCliOptions {
  std::string model, out, type, rules;
  bool synthetic = false;
};

std::string gb(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f GB", double(bytes) / 1e9);
  return buf;
}

int run_quantize(const QuantizeCliOptions& o, const GlobalOptions& g) {
  QuantizeOptions q;
  if (!parse_weight_type(o.type, &q.type))
    fail("--type: unknown type '", o.type, "' (f32, f16, bf16, q8_0, q4_k)");
  q.rules = parse_tensor_type_rules(o.rules);
  ProgressBar bar(!g.quiet);
  q.on_progress = [&bar](const ProgressEvent& e) { bar(e); };
  const std::string model = resolve_model(o.model, g).folder;  // may download (--pull)
  QuantizeReport r;
  if (o.synthetic) {
    // Real Ovis-U1-3B shapes with synthetic weights; tokenizer and preprocessor from -m.
    const ModelSource src = ModelSource::open(model);
    r = quantize_synthetic(kOvisU1_3B_Config, src.preprocessor_json(), src.tokenizer_json(), o.out,
                           q);
  } else {
    r = quantize_model(ModelSource::open(model), o.out, q);
  }
  if (!g.quiet) {
    std::fprintf(stderr, "wrote %s: %lld tensors, %s (tensor data %s -> %s)\n", o.out.c_str(),
                 static_cast<long long>(r.tensors), gb(r.file_bytes).c_str(),
                 gb(r.bytes_in).c_str(), gb(r.bytes_out).c_str());
    for (const auto& [t, n] : r.count_by_type)
      std::fprintf(stderr, "  %-5s %4lld tensors  %s\n", t.c_str(), static_cast<long long>(n),
                   gb(r.bytes_by_type[t]).c_str());
    const size_t shown = std::min<size_t>(r.notes.size(), 8);
    for (size_t i = 0; i < shown; ++i) std::fprintf(stderr, "  note: %s\n", r.notes[i].c_str());
    if (r.notes.size() > shown)
      std::fprintf(stderr, "  note: ... and %zu more tensors like these\n", r.notes.size() - shown);
  }
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto o = std::make_shared<QuantizeCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Write the model as one GGUF file with its weights in f32, f16, bf16, q8_0 or q4_k "
      "(per-tensor defaults by role: see README 'Quantized weights')");
  cmd->add_option("-m,--model", o->model, kModelHelp);
  cmd->add_option("-o,--output", o->out, "Output .gguf file (never one of the inputs)")->required();
  cmd->add_option("--type", o->type, "f32 | f16 | bf16 | q8_0 | q4_k")->required();
  cmd->add_option("--tensor-type-rules", o->rules,
                  "Per-tensor overrides \"REGEX=TYPE,...\": the first regex found in a tensor's "
                  "name sets its type (block types apply to matrices only)");
  // Benchmarks: the real Ovis-U1-3B shapes with synthetic weights (tokenizer from -m).
  cmd->add_flag("--synthetic", o->synthetic, "")->group("");
  cmd->callback([o, &g, &exit_code] { exit_code = run_quantize(*o, g); });
}

}  // namespace ovis::cli
