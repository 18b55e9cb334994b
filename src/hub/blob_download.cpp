#include "hub/blob_download.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "core/error.hpp"
#include "hub/digest.hpp"

namespace ovis::hub {

namespace fs = std::filesystem;

namespace {

bool is_hex(const std::string& s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The .incomplete file, open for appending.
class PartialFile {
 public:
  explicit PartialFile(const fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd_ < 0) fail(path.string(), ": cannot open for writing: ", std::strerror(errno));
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) fail(path.string(), ": ", std::strerror(errno));
    size_ = uint64_t(end);
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint64_t size() const { return size_; }
  void truncate() {
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0)
      fail(path_.string(), ": cannot truncate: ", std::strerror(errno));
    size_ = 0;
  }
  void write(const char* data, size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, data, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail(path_.string(), ": write failed: ", std::strerror(errno));
      data += w;
      n -= size_t(w);
      size_ += uint64_t(w);
    }
  }
  void sync_and_close() {
    if (::fsync(fd_) != 0) fail(path_.string(), ": fsync failed: ", std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
  }

 private:
  fs::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

}  // namespace

uint64_t download_blob(HttpClient& http, const HubEndpoint& hub, const FileMetadata& meta,
                       const fs::path& blob, const std::string& what,
                       const BlobDownloadOptions& options) {
  const fs::path partial_path = blob.string() + ".incomplete";
  PartialFile file(partial_path);
  // LFS files are hashed as they arrive (a resumed prefix is read back first); git files are
  // small and hashed once complete, since their digest needs the size up front.
  const bool lfs = is_hex(meta.etag, 64);
  std::unique_ptr<Digest> sha256;
  if (lfs) sha256 = std::make_unique<Digest>(Digest::Kind::Sha256);
  if (meta.size && file.size() > *meta.size) file.truncate();
  if (sha256 && file.size() > 0) digest_file(*sha256, partial_path, int64_t(file.size()));

  const Headers headers = hub.headers(meta.send_auth);
  uint64_t received = 0;
  double delay = options.retry_delay_s;
  for (int attempt = 1;; ++attempt) {
    if (meta.size && file.size() == *meta.size) break;
    DownloadSink sink;
    const uint64_t offset = file.size();
    sink.on_start = [&](long status) {
      if (status == 206) return;
      if (offset > 0) {  // the server ignored the Range: start over
        file.truncate();
        if (sha256) sha256->reset();
      }
    };
    sink.on_data = [&](const char* data, size_t n) {
      file.write(data, n);
      if (sha256) sha256->update(data, n);
      received += n;
      if (meta.size && file.size() > *meta.size)
        fail(what, ": the server sent more than the announced ", *meta.size, " bytes");
      if (options.on_bytes) options.on_bytes(file.size(), meta.size);
    };
    try {
      const HttpResponse r = http.download(meta.download_url, headers, offset, sink);
      if (r.status == 416 && offset > 0) {  // the partial file does not fit the remote one
        file.truncate();
        if (sha256) sha256->reset();
        continue;
      }
      if (r.status >= 500 || r.status == 429)
        throw TransferError(str("HTTP ", r.status, " from ", r.url), true);
      if (r.status >= 300) fail(what, ": HTTP ", r.status, " from ", r.url);
      if (meta.size && file.size() < *meta.size)  // a body without a length, closed early
        throw TransferError(str("the transfer ended at byte ", file.size()), true);
      break;
    } catch (const TransferError& e) {
      if (!e.retryable() || attempt >= options.max_attempts)
        fail(what, ": ", e.what(), " (", file.size(), meta.size ? str(" of ", *meta.size) : "",
             " bytes kept; run the pull again to resume)");
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      delay *= 2;
    }
  }
  file.sync_and_close();

  const uint64_t size = fs::file_size(partial_path);
  std::string got;
  if (meta.size && size != *meta.size) {
    got = str(size, " bytes");
  } else if (lfs) {
    if (std::string h = sha256->hex(); h != meta.etag) got = "sha256 " + h;
  } else if (is_hex(meta.etag, 40)) {
    if (std::string h = git_blob_sha1(partial_path); h != meta.etag) got = "git sha1 " + h;
  }
  if (!got.empty()) {
    std::error_code ec;
    fs::remove(partial_path, ec);
    fail(what, ": corrupt download: expected ",
         meta.size && size != *meta.size ? str(*meta.size, " bytes")
                                         : (lfs ? "sha256 " : "git sha1 ") + meta.etag,
         ", got ", got, " (the partial file was deleted)");
  }
  std::error_code ec;
  fs::rename(partial_path, blob, ec);
  if (ec) fail(blob.string(), ": cannot move the download into place: ", ec.message());
  return received;
}

}  // namespace ovis::hub
