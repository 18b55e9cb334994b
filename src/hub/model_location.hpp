// What a `-m` argument names: a model folder, or a Hugging Face repo id found in the hub cache.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "hub/repo_ref.hpp"

namespace ovis::hub {

struct ModelLocation {
  std::filesystem::path folder;  // the folder (or .gguf file) to load; empty when not cached
  std::optional<RepoRef> repo;   // set when `spec` was taken as a repo id
  bool found() const { return !folder.empty(); }
  // "Ovis-U1-3B" for AIDC-AI/Ovis-U1-3B@x, the folder's own name otherwise.
  std::string display_name() const;
};

// An existing folder or .gguf file wins over a repo id (a local folder `org/name` is loaded as it
// is); any other `spec` that parses as org/name[@revision] is looked up in `cache` (see
// find_snapshot). Throws ovis::Error when `spec` is an existing file other than *.gguf, or neither
// a folder nor a repo id.
ModelLocation locate_model(const std::string& spec, const std::filesystem::path& cache);

}  // namespace ovis::hub
