#include "hub/model_location.hpp"

#include "core/error.hpp"
#include "hub/cache.hpp"

namespace ovis::hub {

namespace fs = std::filesystem;

std::string ModelLocation::display_name() const {
  if (repo) return repo->repo_id.substr(repo->repo_id.rfind('/') + 1);
  fs::path f = folder;
  if (f.filename().empty()) f = f.parent_path();  // "dir/"
  return f.filename().string();
}

ModelLocation locate_model(const std::string& spec, const fs::path& cache) {
  if (spec.empty()) fail("-m: empty model name");
  ModelLocation loc;
  std::error_code ec;
  const fs::file_status st = fs::status(spec, ec);
  if (fs::is_directory(st)) {
    loc.folder = spec;
    return loc;
  }
  if (fs::is_regular_file(st) && fs::path(spec).extension() == ".gguf") {
    loc.folder = spec;  // one-file model (ovis quantize); its header is validated on load
    return loc;
  }
  if (fs::exists(st))
    fail("-m ", spec,
         ": not a folder or a .gguf file (give the checkpoint folder, a GGUF file, or org/name)");
  loc.repo = parse_repo_ref(spec);
  if (!loc.repo)
    fail("-m ", spec, ": no such folder, and not a Hugging Face repo id org/name[@revision]");
  if (auto snap = find_snapshot(cache, *loc.repo)) loc.folder = *snap;
  return loc;
}

}  // namespace ovis::hub
