// A Hugging Face model repository named as `org/name[@revision]` (the form `-m` and `ovis pull`
// accept). Parsing only checks the syntax the hub allows; whether the repo exists is the cache's
// or the hub's business.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace ovis::hub {

struct RepoRef {
  std::string repo_id;            // "org/name"
  std::string revision = "main";  // branch, tag or 40-hex commit hash
  std::string str() const;        // "org/name" or "org/name@revision" when not main
};

// nullopt when `s` is not of the form org/name[@revision]: the hub's repo-id rules (ASCII letters,
// digits, '_', '-', '.'; each part starts and ends with a letter, digit or '_'; no "--" or "..";
// at most 96 characters) and a revision without "..", spaces or a leading/trailing '/'.
std::optional<RepoRef> parse_repo_ref(std::string_view s);

// A full git commit hash (40 lowercase hex digits): used directly, no refs/ lookup.
bool is_commit_hash(std::string_view s);

}  // namespace ovis::hub
