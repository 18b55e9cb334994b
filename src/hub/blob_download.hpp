// Fetching one file's content into blobs/<etag>: resumable, verified, atomic. Bytes arrive in
// blobs/<etag>.incomplete (the name huggingface_hub uses, so either tool resumes the other's
// partial file); an interrupted transfer is retried from where it stopped with a Range request;
// the complete file must have the size the hub announced and the digest its ETag names (sha256
// for LFS files, git blob sha1 otherwise) before it is renamed to blobs/<etag>. A mismatch
// deletes the partial file, so nothing corrupt is ever resumed or loaded.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>

#include "hub/hub_api.hpp"

namespace ovis::hub {

struct BlobDownloadOptions {
  int max_attempts = 5;        // transfers per file; each retry resumes with Range
  double retry_delay_s = 1.0;  // before the 2nd attempt, doubled after each failure
  // Called as bytes arrive: bytes in the file so far, and the announced size if known.
  std::function<void(uint64_t done, std::optional<uint64_t> total)> on_bytes;
};

// Returns the bytes received from the network. `what` names the file in errors.
uint64_t download_blob(HttpClient& http, const HubEndpoint& hub, const FileMetadata& meta,
                       const std::filesystem::path& blob, const std::string& what,
                       const BlobDownloadOptions& options);

}  // namespace ovis::hub
