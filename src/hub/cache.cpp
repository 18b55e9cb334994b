#include "hub/cache.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace ovis::hub {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

fs::path cache_dir() {
  if (std::string c = env("HF_HUB_CACHE"); !c.empty()) return c;
  if (std::string h = env("HF_HOME"); !h.empty()) return fs::path(h) / "hub";
  const fs::path home = env("HOME");
  return (home.empty() ? fs::current_path() : home) / ".cache" / "huggingface" / "hub";
}

fs::path repo_folder(const fs::path& cache, const std::string& repo_id) {
  std::string name = "models";
  size_t start = 0;
  for (size_t slash; (slash = repo_id.find('/', start)) != std::string::npos; start = slash + 1)
    name += "--" + repo_id.substr(start, slash - start);
  name += "--" + repo_id.substr(start);
  return cache / name;
}

std::optional<fs::path> find_snapshot(const fs::path& cache, const RepoRef& ref) {
  const fs::path repo = repo_folder(cache, ref.repo_id);
  std::string commit = ref.revision;
  if (!is_commit_hash(commit)) {
    std::ifstream in(repo / "refs" / ref.revision);
    if (!in) return std::nullopt;
    std::stringstream ss;
    ss << in.rdbuf();
    commit = trim(ss.str());
    if (!is_commit_hash(commit)) return std::nullopt;
  }
  const fs::path snap = repo / "snapshots" / commit;
  std::error_code ec;
  if (!fs::is_directory(snap, ec)) return std::nullopt;
  return snap;
}

}  // namespace ovis::hub
