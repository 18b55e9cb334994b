#include "hub/pull.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "hub/blob_download.hpp"
#include "hub/cache.hpp"
#include "hub/hub_api.hpp"

namespace ovis::hub {

namespace fs = std::filesystem;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string read_token_file(const fs::path& p) {
  std::ifstream in(p);
  std::string t;
  std::getline(in, t);
  while (!t.empty() && (t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

// Holds .locks/models--org--name/<etag>.lock with flock(), as huggingface_hub's FileLock does,
// so two processes never write the same blob at once.
class BlobLock {
 public:
  explicit BlobLock(const fs::path& path) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0) fail(path.string(), ": cannot open the lock file: ", std::strerror(errno));
    while (::flock(fd_, LOCK_EX) != 0)
      if (errno != EINTR) fail(path.string(), ": cannot lock: ", std::strerror(errno));
  }
  ~BlobLock() { ::close(fd_); }

 private:
  int fd_ = -1;
};

// Writes `content` to `path` through a temporary file and a rename.
void write_atomically(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out.flush()) fail(tmp.string(), ": cannot write");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) fail(path.string(), ": ", ec.message());
}

// snapshots/<commit>/<path> -> ../../blobs/<etag> (one more ../ per folder level of `path`),
// the relative link huggingface_hub makes; replaced atomically if present.
void link_pointer(const fs::path& pointer, const std::string& repo_path, const std::string& etag) {
  std::string target = "../../";
  for (char c : repo_path)
    if (c == '/') target += "../";
  target += "blobs/" + etag;
  fs::create_directories(pointer.parent_path());
  const fs::path tmp = pointer.string() + ".tmp" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (!ec) fs::rename(tmp, pointer, ec);
  if (ec) fail(pointer.string(), ": cannot create the snapshot link: ", ec.message());
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Byte progress of one file as a ProgressEvent in MiB, sent when the MiB count changes.
class FileProgress {
 public:
  FileProgress(const ProgressFn& fn, const std::string& name) : fn_(fn), name_(name) {}
  void operator()(uint64_t done, std::optional<uint64_t> total) {
    if (!fn_ || !total || *total < (1u << 20)) return;
    const int t = int((*total + kMiB - 1) / kMiB);
    const int s = done >= *total ? t : int(done / kMiB);
    if (s == last_) return;
    last_ = s;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    ProgressEvent e{name_, s, t, elapsed};
    e.unit = "MiB";
    fn_(e);
  }

 private:
  static constexpr uint64_t kMiB = 1 << 20;
  const ProgressFn& fn_;
  std::string name_;
  int last_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

PullOptions PullOptions::from_environment() {
  PullOptions o;
  if (std::string e = env("HF_ENDPOINT"); !e.empty()) o.endpoint = e;
  o.token = env("HF_TOKEN");
  if (o.token.empty()) {
    fs::path file = env("HF_TOKEN_PATH");
    if (file.empty()) {
      const std::string home = env("HF_HOME");
      file = home.empty() ? fs::path(env("HOME")) / ".cache" / "huggingface" / "token"
                          : fs::path(home) / "token";
    }
    o.token = read_token_file(file);
  }
  return o;
}

bool is_model_file(const std::string& repo_path) {
  const std::string name = repo_path.substr(repo_path.rfind('/') + 1);
  return ends_with(name, ".json") || ends_with(name, ".safetensors") || name == "tokenizer.model" ||
         name == "merges.txt";
}

PullResult pull(const RepoRef& ref, const PullOptions& options) {
  HubEndpoint hub;
  hub.url = options.endpoint;
  while (!hub.url.empty() && hub.url.back() == '/') hub.url.pop_back();
  if (hub.url.rfind("http://", 0) != 0 && hub.url.rfind("https://", 0) != 0)
    fail("HF_ENDPOINT ", options.endpoint, ": expected an http:// or https:// URL");
  hub.token = options.token;
  const fs::path cache = options.cache.empty() ? cache_dir() : options.cache;
  const fs::path repo = repo_folder(cache, ref.repo_id);
  const fs::path locks = cache / ".locks" / repo.filename();

  HttpClient http;
  const RepoInfo info = fetch_repo_info(http, hub, ref);
  PullResult result;
  result.commit = info.commit;
  result.snapshot = repo / "snapshots" / info.commit;
  std::vector<std::string> files;
  for (const auto& f : info.files)
    if (options.all_files || is_model_file(f)) files.push_back(f);
  if (files.empty())
    fail(ref.str(), ": the repo at ", info.commit.substr(0, 12),
         " has no config, tokenizer or weight files (add --all to fetch every file)");

  BlobDownloadOptions dl;
  dl.max_attempts = std::max(1, options.max_attempts);
  dl.retry_delay_s = options.retry_delay_s;
  for (const auto& f : files) {
    const fs::path pointer = result.snapshot / f;
    ++result.files;
    std::error_code ec;
    if (fs::exists(pointer, ec)) continue;  // the link resolves: already complete
    const std::string what = str(ref.repo_id, "/", f);
    const FileMetadata meta = fetch_file_metadata(http, hub, ref.repo_id, info.commit, f);
    const fs::path blob = repo / "blobs" / meta.etag;
    fs::create_directories(blob.parent_path());
    {
      BlobLock lock(locks / (meta.etag + ".lock"));
      const bool have =
          fs::is_regular_file(blob, ec) && (!meta.size || fs::file_size(blob, ec) == *meta.size);
      if (!have) {
        FileProgress progress(options.on_progress, f);
        dl.on_bytes = [&progress](uint64_t done, std::optional<uint64_t> total) {
          progress(done, total);
        };
        result.bytes += download_blob(http, hub, meta, blob, what, dl);
        ++result.downloaded;
      }
    }
    link_pointer(pointer, f, meta.etag);
  }
  if (!is_commit_hash(ref.revision)) write_atomically(repo / "refs" / ref.revision, info.commit);
  return result;
}

}  // namespace ovis::hub
