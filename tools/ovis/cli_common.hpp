// Shared pieces of the `ovis` command line: global options and small helpers.
#pragma once
#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "core/tensor.hpp"
#include "hub/pull.hpp"
#include "ovis/ovis.hpp"

namespace ovis::cli {

struct GlobalOptions {
  std::string device = "auto";     // cpu | cuda[:N] | auto
  std::string precision = "auto";  // f32 | bf16 | auto
  int threads = 0;                 // 0 = all cores
  bool quiet = false;
  bool pull = false;  // download a repo-id model missing from the cache instead of failing
};

// The model every command uses without -m, from the Hugging Face cache.
inline constexpr const char* kDefaultModel = "AIDC-AI/Ovis-U1-3B";
inline constexpr const char* kModelHelp =
    "Model: a checkpoint folder, a GGUF file written by 'ovis quantize', or a Hugging Face repo id "
    "org/name[@revision] found in the HF cache (an existing folder or file wins). Default: "
    "AIDC-AI/Ovis-U1-3B";

struct ResolvedModel {
  std::string folder;  // what Pipeline::load takes: a checkpoint folder or a GGUF file
  std::string name;    // for metadata and logs: the repo's or the folder's name
};

// -m as given (empty = kDefaultModel) -> a folder: an existing folder as it is, a repo id from the
// HF cache; a repo id missing there is pulled with --pull, otherwise one error line says how to
// get it.
ResolvedModel resolve_model(const std::string& model, const GlobalOptions& g);

// HF_ENDPOINT / HF_TOKEN options with a download progress bar on stderr unless -q.
hub::PullOptions pull_options(const GlobalOptions& g);
// Pulls `ref` and prints a summary line on stderr unless -q.
hub::PullResult pull_model(const hub::RepoRef& ref, const hub::PullOptions& o, bool quiet);

// --device, --precision and -t as Pipeline load options.
LoadOptions load_options(const GlobalOptions& g);
// "FILE.safetensors[:TENSOR]" -> f32 values (the only tensor of the file when TENSOR is omitted).
HostTensor load_init_noise(const std::string& spec);

// Seed: negative -> a random seed, printed to stderr.
uint64_t resolve_seed(int64_t seed, bool quiet);

void add_ask_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_image_commands(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_bench_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_serve_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_quantize_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_pull_command(CLI::App& app, GlobalOptions& g, int& exit_code);
void add_devices_command(CLI::App& app, int& exit_code);

}  // namespace ovis::cli
