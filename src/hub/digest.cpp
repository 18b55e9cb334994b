#include "hub/digest.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "core/error.hpp"

namespace ovis::hub {

Digest::Digest(Kind kind) : kind_(kind), ctx_(EVP_MD_CTX_new()) {
  if (!ctx_) fail("out of memory creating a digest context");
  reset();
}

Digest::~Digest() {
  EVP_MD_CTX_free(ctx_);
}

void Digest::reset() {
  if (EVP_DigestInit_ex(ctx_, kind_ == Kind::Sha256 ? EVP_sha256() : EVP_sha1(), nullptr) != 1)
    fail("OpenSSL: cannot initialise ", kind_ == Kind::Sha256 ? "SHA-256" : "SHA-1");
}

void Digest::update(const void* data, size_t size) {
  if (size && EVP_DigestUpdate(ctx_, data, size) != 1) fail("OpenSSL: digest update failed");
}

std::string Digest::hex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx_, md, &n) != 1) fail("OpenSSL: digest final failed");
  static const char* kHex = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = kHex[md[i] >> 4];
    s[2 * i + 1] = kHex[md[i] & 15];
  }
  reset();
  return s;
}

void digest_file(Digest& d, const std::filesystem::path& path, int64_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open for reading");
  std::vector<char> buf(1 << 20);
  int64_t left = size < 0 ? INT64_MAX : size;
  while (left > 0 && in) {
    in.read(buf.data(), std::streamsize(std::min<int64_t>(left, int64_t(buf.size()))));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    d.update(buf.data(), size_t(got));
    left -= got;
  }
  if (size >= 0 && left > 0) fail(path.string(), ": shorter than ", size, " bytes");
}

std::string git_blob_sha1(const std::filesystem::path& path) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) fail(path.string(), ": ", ec.message());
  Digest d(Digest::Kind::Sha1);
  const std::string header = "blob " + std::to_string(size) + std::string(1, '\0');
  d.update(header.data(), header.size());
  digest_file(d, path, int64_t(size));
  return d.hex();
}

}  // namespace ovis::hub
