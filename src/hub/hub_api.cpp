#include "hub/hub_api.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace ovis::hub {

namespace {

// One line saying what the hub answered, for a failed request.
std::string describe_status(const HttpResponse& r, const std::string& what) {
  std::string msg;
  try {
    auto j = nlohmann::json::parse(r.body);
    if (j.is_object() && j.contains("error") && j["error"].is_string())
      msg = j["error"].get<std::string>();
  } catch (const std::exception&) {
  }
  std::string s = str(what, ": HTTP ", r.status);
  if (!msg.empty()) s += " (" + msg + ")";
  if (r.status == 401 || r.status == 403)
    s += "; the repo may be gated or private: accept its terms on the hub and set HF_TOKEN";
  else if (r.status == 404)
    s += "; check the repo id and revision";
  return s;
}

std::string unquote_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

std::optional<uint64_t> parse_size(const std::string& s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoull(s);
}

bool is_etag_name(const std::string& e) {
  if (e.empty() || e.size() > 128) return false;
  for (char c : e)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  return true;
}

// "http://host:port" of an absolute URL.
std::string origin(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t path = url.find('/', scheme + 3);
  return path == std::string::npos ? url : url.substr(0, path);
}

}  // namespace

Headers HubEndpoint::headers(bool with_auth) const {
  Headers h;
  if (with_auth && !token.empty()) h.emplace_back("Authorization", "Bearer " + token);
  return h;
}

bool is_safe_repo_path(const std::string& path) {
  if (path.empty() || path.size() > 1024 || path.front() == '/') return false;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  for (unsigned char c : path)
    if (c < 0x20 || c == 0x7f || c == '\\') return false;
  return true;
}

RepoInfo fetch_repo_info(HttpClient& http, const HubEndpoint& hub, const RepoRef& ref) {
  const std::string url =
      hub.url + "/api/models/" + ref.repo_id + "/revision/" + url_escape(ref.revision, false);
  const std::string what = str(ref.str(), " on ", hub.url);
  HttpResponse r;
  try {
    r = http.get(url, hub.headers());
  } catch (const TransferError& e) {
    fail(ref.str(), ": cannot reach the hub (", e.what(), ")");
  }
  if (r.status != 200) fail(describe_status(r, what));
  RepoInfo info;
  try {
    const auto j = nlohmann::json::parse(r.body);
    info.commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings"))
      info.files.push_back(s.at("rfilename").get<std::string>());
  } catch (const std::exception& e) {
    fail(what, ": unexpected answer from ", url, " (", e.what(), ")");
  }
  if (!is_commit_hash(info.commit))
    fail(what, ": the hub gave no commit hash (sha '", info.commit, "')");
  for (const auto& f : info.files)
    if (!is_safe_repo_path(f)) fail(what, ": refusing the file name '", f, "' from the listing");
  return info;
}

FileMetadata fetch_file_metadata(HttpClient& http, const HubEndpoint& hub,
                                 const std::string& repo_id, const std::string& commit,
                                 const std::string& path) {
  const std::string resolve =
      hub.url + "/" + repo_id + "/resolve/" + commit + "/" + url_escape(path, true);
  Headers h = hub.headers();
  h.emplace_back("Accept-Encoding", "identity");
  std::string url = resolve;
  HttpResponse r = http.head(url, h);
  // Relative redirects (a renamed repo) are followed here; an absolute one leads to the CDN.
  for (int hops = 0; r.status >= 300 && r.status < 400 && r.header("location").rfind("/", 0) == 0;
       ++hops) {
    if (hops == 5) fail(repo_id, "/", path, ": too many redirects");
    url = origin(hub.url) + r.header("location");
    r = http.head(url, h);
  }
  const std::string what = str(repo_id, "/", path, " at ", commit.substr(0, 12));
  FileMetadata m;
  if (r.status >= 300 && r.status < 400) {
    m.download_url = r.header("location");
    m.send_auth = false;
    if (m.download_url.empty()) fail(what, ": redirect without a Location");
  } else if (r.status == 200) {
    m.download_url = url;
  } else {
    fail(describe_status(r, what));
  }
  std::string linked = r.header("x-linked-etag");
  m.etag = unquote_etag(linked.empty() ? r.header("etag") : linked);
  if (!is_etag_name(m.etag)) fail(what, ": the hub gave no usable ETag ('", m.etag, "')");
  // A redirect's own Content-Length is its (empty) body's, not the file's.
  std::string size = r.header("x-linked-size");
  if (size.empty() && r.status == 200) size = r.header("content-length");
  m.size = parse_size(size);
  return m;
}

}  // namespace ovis::hub
