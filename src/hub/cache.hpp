// The Hugging Face hub cache on disk, shared with huggingface_hub / huggingface-cli:
//   <cache>/models--org--name/refs/<revision>         the commit hash a branch or tag points to
//   <cache>/models--org--name/snapshots/<commit>/<f>  symlink -> ../../blobs/<etag>
//   <cache>/models--org--name/blobs/<etag>            file content (etag: sha256 or git sha1)
//   <cache>/.locks/models--org--name/<etag>.lock      held while a blob is being written
#pragma once
#include <filesystem>
#include <optional>
#include <string>

#include "hub/repo_ref.hpp"

namespace ovis::hub {

// $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (read on every call).
std::filesystem::path cache_dir();

// <cache>/models--org--name
std::filesystem::path repo_folder(const std::filesystem::path& cache, const std::string& repo_id);

// The snapshot folder `ref` names in `cache`: a commit hash is used directly, any other revision
// goes through refs/<revision>. nullopt when the ref or the snapshot folder is missing.
std::optional<std::filesystem::path> find_snapshot(const std::filesystem::path& cache,
                                                   const RepoRef& ref);

}  // namespace ovis::hub
