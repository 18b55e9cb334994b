// `ovis pull`: download a model into the Hugging Face cache (src/hub/pull.hpp).
#include <cstdio>

#include "cli_common.hpp"
#include "core/error.hpp"

namespace ovis::cli {

namespace {

struct PullCommandOptions {
  std::string repo = kDefaultModel;
  bool all = false;
};

int run_pull(const PullCommandOptions& o, const GlobalOptions& g) {
  const auto ref = hub::parse_repo_ref(o.repo);
  if (!ref) fail("pull ", o.repo, ": not a Hugging Face repo id org/name[@revision]");
  hub::PullOptions po = pull_options(g);
  po.all_files = o.all;
  const hub::PullResult r = pull_model(*ref, po, g.quiet);
  std::printf("%s\n", r.snapshot.c_str());
  return 0;
}

}  // namespace

void add_pull_command(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto o = std::make_shared<PullCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "pull",
      "Download a model from the Hugging Face hub into the HF cache ($HF_HUB_CACHE, else "
      "$HF_HOME/hub, else ~/.cache/huggingface/hub), resuming interrupted files and verifying "
      "each one. Honours HF_ENDPOINT and HF_TOKEN. Prints the snapshot folder on stdout.");
  cmd->add_option("repo", o->repo, "org/name[@revision] (branch, tag or commit hash)")
      ->capture_default_str();
  cmd->add_flag("--all", o->all,
                "Every file of the repo (default: only configs, tokenizer files and "
                "*.safetensors weights with their index)");
  cmd->callback([o, &g, &exit_code] { exit_code = run_pull(*o, g); });
}

}  // namespace ovis::cli
