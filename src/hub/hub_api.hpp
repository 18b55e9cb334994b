// The two hub requests a download needs, as huggingface_hub makes them:
//   GET  {endpoint}/api/models/{repo}/revision/{rev}  -> {"sha": commit, "siblings":
//   [{"rfilename"}]} HEAD {endpoint}/{repo}/resolve/{commit}/{file}    -> ETag / X-Linked-Etag,
//   X-Linked-Size,
//        and for LFS files a 302 to the CDN (the request that follows carries no Authorization).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "hub/http_client.hpp"
#include "hub/repo_ref.hpp"

namespace ovis::hub {

struct HubEndpoint {
  std::string url = "https://huggingface.co";  // no trailing '/'
  std::string token;                           // sent as "Authorization: Bearer <token>"
  Headers headers(bool with_auth = true) const;
};

struct RepoInfo {
  std::string commit;              // 40-hex commit the revision points to
  std::vector<std::string> files;  // every file of the repo at that commit (repo paths)
};

// Throws ovis::Error with the hub's answer (not found, access denied: set HF_TOKEN, ...).
RepoInfo fetch_repo_info(HttpClient& http, const HubEndpoint& hub, const RepoRef& ref);

struct FileMetadata {
  std::string etag;  // sha256 (LFS) or git blob sha1, quotes removed
  std::optional<uint64_t> size;
  std::string download_url;  // the CDN location for LFS files, else the resolve URL
  bool send_auth = true;     // false for a redirect target
};

FileMetadata fetch_file_metadata(HttpClient& http, const HubEndpoint& hub,
                                 const std::string& repo_id, const std::string& commit,
                                 const std::string& path);

// A repo path from the listing that is safe to use under snapshots/<commit>/: relative, no "."
// or ".." components, no empty components, no backslash or control characters.
bool is_safe_repo_path(const std::string& path);

}  // namespace ovis::hub
