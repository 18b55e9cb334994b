// Shared pieces of the `ovis` command line: global options and small helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "core/tensor.hpp"
#include "ovis/ovis.hpp"

namespace ovis::cli {

struct GlobalOptions {
  std::string device = "auto";     // cpu | cuda[:N] | auto
  std::string precision = "auto";  // f32 | bf16 | auto
  int threads = 0;                 // 0 = all cores
  bool quiet = false;
};

// --device, --precision and -t as Pipeline load options.
LoadOptions load_options(const GlobalOptions& g);
// "FILE.safetensors[:TENSOR]" -> f32 values (the only tensor of the file when TENSOR is omitted).
HostTensor load_init_noise(const std::string& spec);

// Seed: negative -> a random seed, printed to stderr.
uint64_t resolve_seed(int64_t seed, bool quiet);

void add_ask_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_image_commands(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_bench_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_quantize_command(CLI::App& app, GlobalOptions& g, int& exit_code);

}  // namespace ovis::cli
