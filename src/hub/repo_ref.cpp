#include "hub/repo_ref.hpp"

#include <algorithm>

namespace ovis::hub {

namespace {

bool is_word(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool valid_part(std::string_view p) {
  if (p.empty() || !is_word(p.front()) || !is_word(p.back())) return false;
  return std::all_of(p.begin(), p.end(), [](char c) { return is_word(c) || c == '-' || c == '.'; });
}

bool valid_revision(std::string_view r) {
  if (r.empty() || r.size() > 255 || r.front() == '/' || r.back() == '/') return false;
  if (r.find("..") != std::string_view::npos || r.find("//") != std::string_view::npos)
    return false;
  return std::all_of(r.begin(), r.end(), [](char c) {
    return is_word(c) || c == '-' || c == '.' || c == '/' || c == '+';
  });
}

}  // namespace

std::string RepoRef::str() const {
  return revision == "main" ? repo_id : repo_id + "@" + revision;
}

bool is_commit_hash(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::optional<RepoRef> parse_repo_ref(std::string_view s) {
  RepoRef r;
  const size_t at = s.find('@');
  std::string_view id = s.substr(0, at);
  if (at != std::string_view::npos) {
    std::string_view rev = s.substr(at + 1);
    if (!valid_revision(rev)) return std::nullopt;
    r.revision = std::string(rev);
  }
  const size_t slash = id.find('/');
  if (slash == std::string_view::npos || id.size() > 96) return std::nullopt;
  if (!valid_part(id.substr(0, slash)) || !valid_part(id.substr(slash + 1))) return std::nullopt;
  if (id.find("--") != std::string_view::npos || id.find("..") != std::string_view::npos)
    return std::nullopt;
  r.repo_id = std::string(id);
  return r;
}

}  // namespace ovis::hub
