// Content digests the hub uses as ETags: SHA-256 for LFS files, the git blob SHA-1
// (sha1("blob <size>\0" + content)) for files stored in git. OpenSSL does the hashing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace ovis::hub {

class Digest {
 public:
  enum class Kind { Sha256, Sha1 };
  explicit Digest(Kind kind);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void update(const void* data, size_t size);
  // Lowercase hex of everything updated since construction or reset(); then resets.
  std::string hex();
  void reset();

 private:
  Kind kind_;
  EVP_MD_CTX* ctx_;
};

// Feeds the first `size` bytes of `path` (all of it when size is -1) into `d`; throws ovis::Error
// naming the file when it cannot be read.
void digest_file(Digest& d, const std::filesystem::path& path, int64_t size = -1);

// The git object id of a file's content, as the hub gives it in a git file's ETag.
std::string git_blob_sha1(const std::filesystem::path& path);

}  // namespace ovis::hub
