// `ovis pull`: a model repository from the Hugging Face hub into the shared cache (cache.hpp),
// laid out exactly as huggingface_hub's snapshot_download lays it out, so huggingface-cli and
// ovis each find what the other fetched.
//
// Order of writes, so that an interrupted pull never leaves anything that later loads: each blob
// appears only once complete and verified (blob_download.hpp), each snapshot symlink only after its
// blob, and refs/<revision> only after every file of the snapshot is in place (a revision that
// is a commit hash gets no ref, as in huggingface_hub).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "hub/repo_ref.hpp"
#include "ovis/types.hpp"

namespace ovis::hub {

struct PullOptions {
  std::string endpoint = "https://huggingface.co";
  std::string token;            // "" = anonymous
  std::filesystem::path cache;  // "" = cache_dir()
  bool all_files = false;       // false: only is_model_file() files
  int max_attempts = 5;         // per file; each retry resumes with Range
  double retry_delay_s = 1.0;   // doubled after each failed attempt
  ProgressFn on_progress;       // per file: stage = file name, step/total in MiB
  // HF_ENDPOINT (default https://huggingface.co); HF_TOKEN, else the token file huggingface-cli
  // login writes ($HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token).
  static PullOptions from_environment();
};

struct PullResult {
  std::filesystem::path snapshot;  // <cache>/models--org--name/snapshots/<commit>
  std::string commit;
  int files = 0;       // files in the snapshot
  int downloaded = 0;  // of which fetched now (the others were cached)
  uint64_t bytes = 0;  // received now
};

// Throws ovis::Error naming the repo or file on any failure (partial files stay for a resume,
// corrupt ones are deleted).
PullResult pull(const RepoRef& ref, const PullOptions& options);

// The files a model folder needs: configs, tokenizer and preprocessor files (*.json,
// tokenizer.model, merges.txt), weights and their index (*.safetensors, *.safetensors.index.json).
// Code, docs, images and other weight formats are skipped unless PullOptions::all_files.
bool is_model_file(const std::string& repo_path);

}  // namespace ovis::hub
