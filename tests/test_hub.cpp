// Models by name: repo-id resolution in the Hugging Face cache, and `ovis pull` against a fake
// hub served on 127.0.0.1 from the tiny fixture (API listing, resolve with ETag / X-Linked-Etag /
// X-Repo-Commit headers, LFS files as a 302 to a "CDN" path with Range support, and injected
// faults: a connection cut mid-file, a corrupted file).
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.hpp"
#include "hub/cache.hpp"
#include "hub/digest.hpp"
#include "hub/hub_api.hpp"
#include "hub/model_location.hpp"
#include "hub/pull.hpp"
#include "hub/repo_ref.hpp"
#include "io/image.hpp"
#include "support/cli_fixture.hpp"
#include "support/golden.hpp"

using namespace ovis;
using namespace ovis::hub;
namespace fs = std::filesystem;
using test::CliRun;
using test::slurp;

namespace {

const std::string kCommitMain(40, '1');
const std::string kCommitV1(40, '2');
const std::string kToken = "hf_test_token_123";

std::string sha256_of(const std::string& s) {
  Digest d(Digest::Kind::Sha256);
  d.update(s.data(), s.size());
  return d.hex();
}

std::string git_sha1_of(const std::string& s) {
  Digest d(Digest::Kind::Sha1);
  const std::string header = "blob " + std::to_string(s.size()) + std::string(1, '\0');
  d.update(header.data(), header.size());
  d.update(s.data(), s.size());
  return d.hex();
}

struct HubFile {
  std::string content;
  bool lfs = false;
  std::string etag;  // sha256 for LFS files, git blob sha1 otherwise
};

// The files the fake repo holds: the tiny model, plus a README and a nested image that the
// default pull skips. Files over 1 MB and weights/images are LFS, as on the real hub.
std::map<std::string, HubFile> fixture_files() {
  std::map<std::string, HubFile> files;
  for (const char* name : {"config.json", "preprocessor_config.json", "tokenizer.json",
                           "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                           "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                           "model-00002-of-00002.safetensors", "README.md", "inputs/cat.png"}) {
    HubFile f;
    f.content = slurp(test::fixture_path(name));
    const std::string n = name;
    f.lfs = f.content.size() > (1 << 20) || n.ends_with(".safetensors") || n.ends_with(".png");
    f.etag = f.lfs ? sha256_of(f.content) : git_sha1_of(f.content);
    files[name] = std::move(f);
  }
  return files;
}

struct FakeRepo {
  std::map<std::string, std::string> refs;  // revision -> commit
  std::map<std::string, HubFile> files;     // the same at every commit
  bool gated = false;                       // requires the Bearer token
  std::vector<std::string> extra_listing;   // names listed but never served
};

struct SeenRequest {
  std::string method, path, authorization, range;
};

class FakeHub {
 public:
  FakeHub() {
    svr_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))",
             [this](const httplib::Request& q, httplib::Response& r) { api(q, r); });
    svr_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
             [this](const httplib::Request& q, httplib::Response& r) { resolve(q, r); });
    svr_.Get(R"(/cdn/([0-9a-f]{64}))",
             [this](const httplib::Request& q, httplib::Response& r) { cdn(q, r); });
    port_ = svr_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
  }
  ~FakeHub() {
    svr_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void add_repo(const std::string& id, FakeRepo repo) {
    std::lock_guard<std::mutex> l(mu_);
    repos_[id] = std::move(repo);
  }
  // The next CDN response for `etag` is cut after `bytes` bytes (the connection is dropped).
  void drop_once(const std::string& etag, size_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    drop_etag_ = etag;
    drop_after_ = bytes;
  }
  // The CDN answers every request with the whole file and 200, as a server without Range support.
  void ignore_ranges(bool on) { ignore_ranges_ = on; }
  // Every CDN response for `etag` has one byte flipped ("" = none).
  void corrupt(const std::string& etag) {
    std::lock_guard<std::mutex> l(mu_);
    corrupt_etag_ = etag;
  }
  std::vector<SeenRequest> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }
  void clear_requests() {
    std::lock_guard<std::mutex> l(mu_);
    seen_.clear();
  }

 private:
  void record(const httplib::Request& q) {
    std::lock_guard<std::mutex> l(mu_);
    seen_.push_back(
        {q.method, q.path, q.get_header_value("Authorization"), q.get_header_value("Range")});
  }
  static void error(httplib::Response& r, int status, const std::string& msg) {
    r.status = status;
    r.set_content(nlohmann::json{{"error", msg}}.dump(), "application/json");
  }
  // The repo and commit a request names, or an error response (false).
  bool find(const httplib::Request& q, const std::string& id, const std::string& rev,
            FakeRepo& repo, std::string& commit, httplib::Response& r) {
    std::lock_guard<std::mutex> l(mu_);
    auto it = repos_.find(id);
    if (it == repos_.end()) {
      error(r, 404, "Repository not found");
      return false;
    }
    if (it->second.gated && q.get_header_value("Authorization") != "Bearer " + kToken) {
      error(r, 401, "Access to model " + id + " is restricted. You must be authenticated.");
      return false;
    }
    repo = it->second;
    bool known_commit = false;
    for (const auto& [name, c] : repo.refs) known_commit |= (c == rev);
    if (known_commit) {
      commit = rev;
    } else if (auto ref = repo.refs.find(rev); ref != repo.refs.end()) {
      commit = ref->second;
    } else {
      error(r, 404, "Invalid rev id: " + rev);
      return false;
    }
    return true;
  }
  void api(const httplib::Request& q, httplib::Response& r) {
    record(q);
    FakeRepo repo;
    std::string commit;
    if (!find(q, q.matches[1], q.matches[2], repo, commit, r)) return;
    nlohmann::json siblings = nlohmann::json::array();
    for (const auto& [name, f] : repo.files) siblings.push_back({{"rfilename", name}});
    for (const auto& name : repo.extra_listing) siblings.push_back({{"rfilename", name}});
    r.set_content(
        nlohmann::json{{"id", q.matches[1]}, {"sha", commit}, {"siblings", siblings}}.dump(),
        "application/json");
  }
  void resolve(const httplib::Request& q, httplib::Response& r) {
    record(q);
    FakeRepo repo;
    std::string commit;
    if (!find(q, q.matches[1], q.matches[2], repo, commit, r)) return;
    r.set_header("X-Repo-Commit", commit);
    auto it = repo.files.find(q.matches[3]);
    if (it == repo.files.end()) return error(r, 404, "Entry not found");
    const HubFile& f = it->second;
    if (f.lfs) {
      // The hub's answer for an LFS file: the pointer's ETag, the content's in X-Linked-Etag.
      r.set_header("ETag",
                   "\"" + git_sha1_of("version https://git-lfs.github.com/spec/v1\n") + "\"");
      r.set_header("X-Linked-Etag", "\"" + f.etag + "\"");
      r.set_header("X-Linked-Size", std::to_string(f.content.size()));
      r.set_redirect(url() + "/cdn/" + f.etag, 302);
    } else {
      r.set_header("ETag", "\"" + f.etag + "\"");
      r.set_content(f.content, "application/octet-stream");
    }
  }
  void cdn(const httplib::Request& q, httplib::Response& r) {
    record(q);
    const std::string etag = q.matches[1];
    std::string content;
    size_t drop = 0;
    {
      std::lock_guard<std::mutex> l(mu_);
      for (const auto& [id, repo] : repos_)
        for (const auto& [name, f] : repo.files)
          if (f.etag == etag) content = f.content;
      if (etag == corrupt_etag_) content[content.size() / 2] ^= 0x5a;
      if (etag == drop_etag_) {
        drop = drop_after_;
        drop_etag_.clear();
      }
    }
    if (content.empty()) return error(r, 404, "no such object");
    if (ignore_ranges_ && drop == 0) {
      // httplib applies a request's Range to any response; forgetting the parsed ranges (the
      // Request object is httplib's own, non-const) makes it answer 200 with the whole file.
      const_cast<httplib::Request&>(q).ranges.clear();
      r.set_content(content, "application/octet-stream");
      return;
    }
    if (drop == 0) {
      r.set_content(content, "application/octet-stream");  // httplib answers Range with 206
      return;
    }
    auto data = std::make_shared<std::string>(std::move(content));
    r.set_content_provider(data->size(), "application/octet-stream",
                           [data, drop](size_t offset, size_t length, httplib::DataSink& sink) {
                             if (offset < drop)
                               sink.write(data->data() + offset, std::min(length, drop - offset));
                             return false;  // drops the connection mid-file
                           });
  }

  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::map<std::string, FakeRepo> repos_;
  std::vector<SeenRequest> seen_;
  std::atomic<bool> ignore_ranges_{false};
  std::string drop_etag_, corrupt_etag_;
  size_t drop_after_ = 0;
};

FakeRepo tiny_repo(bool gated = false) {
  FakeRepo r;
  r.refs = {{"main", kCommitMain}, {"v1", kCommitV1}};
  r.files = fixture_files();
  r.gated = gated;
  return r;
}

class Hub : public test::CliTest {
 protected:
  Hub() : CliTest("hub") {}
  void SetUp() override {
    CliTest::SetUp();
    cache_ = dir_ / "hub";
  }

  PullOptions options(const FakeHub& hub) const {
    PullOptions o;
    o.endpoint = hub.url();
    o.token = kToken;
    o.cache = cache_;
    o.retry_delay_s = 0;
    return o;
  }
  fs::path repo_dir(const std::string& id = "org/tiny") const { return repo_folder(cache_, id); }

  // The ovis binary with a private HF cache and home, and the fake hub as endpoint.
  CliRun run(const std::string& args, const std::string& endpoint = "http://127.0.0.1:9",
             const std::string& token = "") const {
    return CliTest::run(args, "HF_HUB_CACHE=" + cache_.string() +
                                  " HF_HOME=" + (dir_ / "hf_home").string() +
                                  " HF_ENDPOINT=" + endpoint + " HF_TOKEN=" + token);
  }
  static std::string ask_args() {
    return "ask --precision f32 --image " + test::fixture_path("inputs/cat.png") +
           " -p 'What is it?' -n 8";
  }
  static std::string golden_answer() {
    return test::manifest_case("und_single")["greedy_text"].get<std::string>() + "\n";
  }

  // A cache entry as huggingface-cli leaves it: blobs, relative snapshot links and a ref.
  void make_cached_repo(const std::string& id, const std::string& commit,
                        const std::string& ref = "main") {
    const fs::path repo = repo_folder(cache_, id);
    fs::create_directories(repo / "blobs");
    fs::create_directories(repo / "snapshots" / commit);
    for (const auto& e : fs::directory_iterator(test::fixture_dir())) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || name.rfind("goldens", 0) == 0) continue;
      fs::create_symlink(e.path(), repo / "blobs" / ("blob_" + name));
      fs::create_symlink("../../blobs/blob_" + name, repo / "snapshots" / commit / name);
    }
    fs::create_directories(repo / "refs");
    std::ofstream(repo / "refs" / ref) << commit;
  }

  fs::path cache_;
};

// ---- names and resolution -------------------------------------------------------------------

TEST(RepoRefTest, ParsesRepoIdsAndRevisions) {
  auto r = parse_repo_ref("AIDC-AI/Ovis-U1-3B");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->repo_id, "AIDC-AI/Ovis-U1-3B");
  EXPECT_EQ(r->revision, "main");
  r = parse_repo_ref("org/name@v1.0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->revision, "v1.0");
  EXPECT_EQ(r->str(), "org/name@v1.0");
  r = parse_repo_ref("org/name@refs/pr/1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->revision, "refs/pr/1");
  for (const char* bad : {"name", "a/b/c", "/abs/path", "./x", "../x/y", "org/", "/name",
                          "org/na me", "org/..", "org/-x", "org/x.", "o--rg/x", "org/name@",
                          "org/name@../x", "org/name@/x", "org/name@a b", "", "org/name@x@y"})
    EXPECT_FALSE(parse_repo_ref(bad)) << bad;
  EXPECT_TRUE(is_commit_hash(kCommitMain));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_FALSE(is_commit_hash(std::string(40, 'A')));
}

TEST(RepoRefTest, ModelFileFilterAndSafePaths) {
  for (const char* keep :
       {"config.json", "tokenizer.json", "preprocessor_config.json", "model.safetensors",
        "model-00001-of-00002.safetensors", "model.safetensors.index.json", "merges.txt",
        "tokenizer.model", "sub/config.json"})
    EXPECT_TRUE(is_model_file(keep)) << keep;
  for (const char* skip : {"README.md", "modeling_ovis_u1.py", "pytorch_model.bin",
                           "inputs/cat.png", ".gitattributes", "docs/a.txt"})
    EXPECT_FALSE(is_model_file(skip)) << skip;
  for (const char* bad : {"../x", "a/../b", "/etc/passwd", "a//b", "./a", "a/", "a\\b", ""})
    EXPECT_FALSE(is_safe_repo_path(bad)) << bad;
  EXPECT_TRUE(is_safe_repo_path("inputs/cat.png"));
}

TEST_F(Hub, CacheDirPrecedence) {
  struct Env {
    const char* name;
    std::string saved;
    bool had;
  } vars[] = {{"HF_HUB_CACHE", "", false}, {"HF_HOME", "", false}, {"HOME", "", false}};
  for (auto& v : vars)
    if (const char* s = std::getenv(v.name)) v.saved = s, v.had = true;
  setenv("HOME", "/home/someone", 1);
  unsetenv("HF_HUB_CACHE");
  unsetenv("HF_HOME");
  EXPECT_EQ(cache_dir(), fs::path("/home/someone/.cache/huggingface/hub"));
  setenv("HF_HOME", "/data/hf", 1);
  EXPECT_EQ(cache_dir(), fs::path("/data/hf/hub"));
  setenv("HF_HUB_CACHE", "/fast/cache", 1);
  EXPECT_EQ(cache_dir(), fs::path("/fast/cache"));
  for (auto& v : vars)
    if (v.had)
      setenv(v.name, v.saved.c_str(), 1);
    else
      unsetenv(v.name);
}

TEST_F(Hub, RefsLeadToSnapshots) {
  EXPECT_EQ(repo_dir("AIDC-AI/Ovis-U1-3B").filename(), "models--AIDC-AI--Ovis-U1-3B");
  make_cached_repo("org/tiny", kCommitMain);
  fs::create_directories(repo_dir() / "snapshots" / kCommitV1);
  std::ofstream(repo_dir() / "refs" / "v1") << kCommitV1 << "\n";  // a trailing newline is fine
  auto main_snap = find_snapshot(cache_, *parse_repo_ref("org/tiny"));
  ASSERT_TRUE(main_snap);
  EXPECT_EQ(*main_snap, repo_dir() / "snapshots" / kCommitMain);
  EXPECT_EQ(*find_snapshot(cache_, *parse_repo_ref("org/tiny@v1")),
            repo_dir() / "snapshots" / kCommitV1);
  // A commit hash is used directly, without a ref.
  EXPECT_EQ(*find_snapshot(cache_, *parse_repo_ref("org/tiny@" + kCommitV1)),
            repo_dir() / "snapshots" / kCommitV1);
  EXPECT_FALSE(find_snapshot(cache_, *parse_repo_ref("org/tiny@v2")));
  EXPECT_FALSE(find_snapshot(cache_, *parse_repo_ref("org/tiny@" + std::string(40, '3'))));
  EXPECT_FALSE(find_snapshot(cache_, *parse_repo_ref("org/other")));
  // A ref to a snapshot that is not there is no model.
  std::ofstream(repo_dir() / "refs" / "v3") << std::string(40, '4');
  EXPECT_FALSE(find_snapshot(cache_, *parse_repo_ref("org/tiny@v3")));
  std::ofstream(repo_dir() / "refs" / "bad") << "not a hash";
  EXPECT_FALSE(find_snapshot(cache_, *parse_repo_ref("org/tiny@bad")));
}

TEST_F(Hub, AnExistingFolderWinsOverARepoId) {
  make_cached_repo("org/tiny", kCommitMain);
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  ModelLocation cached = locate_model("org/tiny", cache_);
  EXPECT_EQ(cached.folder, repo_dir() / "snapshots" / kCommitMain);
  ASSERT_TRUE(cached.repo);
  EXPECT_EQ(cached.display_name(), "tiny");
  fs::create_directories(dir_ / "org" / "tiny");
  ModelLocation local = locate_model("org/tiny", cache_);
  EXPECT_EQ(local.folder, fs::path("org/tiny"));
  EXPECT_FALSE(local.repo);
  EXPECT_EQ(locate_model("org/tiny/", cache_).display_name(), "tiny");
  fs::current_path(cwd);
  // Neither a folder nor a repo id; an existing file is not a model folder.
  EXPECT_THROW(locate_model((dir_ / "nope").string(), cache_), Error);
  std::ofstream(dir_ / "file.bin") << "x";
  EXPECT_THROW(locate_model((dir_ / "file.bin").string(), cache_), Error);
  // A .gguf file (ovis quantize) is a model; its header is validated when it is loaded.
  std::ofstream(dir_ / "model.gguf") << "x";
  ModelLocation gguf = locate_model((dir_ / "model.gguf").string(), cache_);
  EXPECT_EQ(gguf.folder, dir_ / "model.gguf");
  EXPECT_FALSE(gguf.repo);
  // A repo id missing from the cache is located but not found.
  ModelLocation missing = locate_model("org/absent", cache_);
  EXPECT_FALSE(missing.found());
  ASSERT_TRUE(missing.repo);
}

TEST_F(Hub, CliLoadsARepoIdFromAHuggingFaceCliCache) {
  make_cached_repo("org/tiny", kCommitMain);
  CliRun r = run(ask_args() + " -m org/tiny");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, golden_answer());
}

TEST_F(Hub, MissingModelSaysHowToGetIt) {
  CliRun r = run("ask -p hi");
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("ovis pull AIDC-AI/Ovis-U1-3B"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--pull"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(cache_.string()), std::string::npos) << r.err;
  CliRun g = run("generate -m org/absent@v2 -p x -o " + (dir_ / "x.png").string());
  expect_one_line_error(g);
  EXPECT_NE(g.err.find("ovis pull org/absent@v2"), std::string::npos) << g.err;
  EXPECT_FALSE(fs::exists(dir_ / "x.png"));
  expect_one_line_error(run("ask -m ./no/such/folder -p hi"));
  // --pull with an unreachable hub: one line naming the repo.
  CliRun p = run("--pull ask -m org/absent -p hi");
  expect_one_line_error(p);
  EXPECT_NE(p.err.find("org/absent"), std::string::npos) << p.err;
}

// ---- pull against the fake hub --------------------------------------------------------------

TEST_F(Hub, PullWritesTheHuggingFaceCacheLayout) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo(/*gated=*/true));
  const auto files = fixture_files();
  PullResult r = pull(*parse_repo_ref("org/tiny"), options(hub));
  EXPECT_EQ(r.commit, kCommitMain);
  EXPECT_EQ(r.snapshot, repo_dir() / "snapshots" / kCommitMain);
  EXPECT_EQ(r.files, 9);  // README.md and inputs/cat.png are not model files
  EXPECT_EQ(r.downloaded, 9);
  EXPECT_EQ(slurp(repo_dir() / "refs" / "main"), kCommitMain);
  for (const auto& [name, f] : files) {
    const fs::path pointer = r.snapshot / name;
    if (!is_model_file(name)) {
      EXPECT_FALSE(fs::exists(pointer)) << name;
      continue;
    }
    ASSERT_TRUE(fs::is_symlink(pointer)) << name;
    EXPECT_EQ(fs::read_symlink(pointer), fs::path("../../blobs/" + f.etag)) << name;
    EXPECT_EQ(slurp(pointer), f.content) << name;
  }
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (files.at("config.json").etag + ".incomplete")));
  EXPECT_TRUE(fs::exists(cache_ / ".locks" / "models--org--tiny" /
                         (files.at("config.json").etag + ".lock")));
  // The token goes to the hub (API, resolve), never to the CDN.
  int cdn = 0;
  for (const auto& q : hub.requests()) {
    if (q.path.rfind("/cdn/", 0) == 0) {
      ++cdn;
      EXPECT_EQ(q.authorization, "") << q.path;
      EXPECT_EQ(q.range, "") << q.path;
    } else {
      EXPECT_EQ(q.authorization, "Bearer " + kToken) << q.path;
    }
  }
  EXPECT_EQ(cdn, 3);  // the two shards and tokenizer.json are LFS

  // A second pull finds everything in place: the listing only, nothing downloaded.
  hub.clear_requests();
  PullResult again = pull(*parse_repo_ref("org/tiny"), options(hub));
  EXPECT_EQ(again.downloaded, 0);
  EXPECT_EQ(hub.requests().size(), 1u);

  // --all: every file, a nested one with a deeper relative link.
  PullOptions all = options(hub);
  all.all_files = true;
  PullResult every = pull(*parse_repo_ref("org/tiny"), all);
  EXPECT_EQ(every.files, 11);
  EXPECT_EQ(every.downloaded, 2);
  EXPECT_EQ(fs::read_symlink(r.snapshot / "inputs" / "cat.png"),
            fs::path("../../../blobs/" + files.at("inputs/cat.png").etag));
  EXPECT_EQ(slurp(r.snapshot / "inputs" / "cat.png"), files.at("inputs/cat.png").content);
}

TEST_F(Hub, GatedRepoNeedsTheToken) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo(/*gated=*/true));
  PullOptions o = options(hub);
  o.token = "";
  try {
    pull(*parse_repo_ref("org/tiny"), o);
    FAIL() << "pulled a gated repo without a token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("401"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("HF_TOKEN"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(repo_dir() / "refs" / "main"));
  // HF_TOKEN from the environment, through the CLI.
  CliRun bad = run("pull org/tiny", hub.url(), "wrong");
  expect_one_line_error(bad);
  CliRun ok = run("pull org/tiny", hub.url(), kToken);
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, (repo_dir() / "snapshots" / kCommitMain).string() + "\n");
}

TEST_F(Hub, UnknownRepoOrRevisionIsOneClearError) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  EXPECT_THROW(pull(*parse_repo_ref("org/none"), options(hub)), Error);
  try {
    pull(*parse_repo_ref("org/tiny@v9"), options(hub));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("org/tiny@v9"), std::string::npos) << e.what();
  }
  CliRun r = run("pull org/none", hub.url());
  expect_one_line_error(r);
  expect_one_line_error(run("pull not-a-repo-id", hub.url()));
  EXPECT_FALSE(fs::exists(repo_dir("org/none") / "refs"));
}

TEST_F(Hub, RefusesUnsafeFileNamesFromTheListing) {
  FakeHub hub;
  FakeRepo repo = tiny_repo();
  repo.extra_listing = {"../../../escape.json"};
  hub.add_repo("org/tiny", repo);
  EXPECT_THROW(pull(*parse_repo_ref("org/tiny"), options(hub)), Error);
  EXPECT_FALSE(fs::exists(cache_ / "escape.json"));
  EXPECT_FALSE(fs::exists(repo_dir() / "snapshots"));
}

TEST_F(Hub, RevisionRefsShareBlobs) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  pull(*parse_repo_ref("org/tiny"), options(hub));
  hub.clear_requests();
  PullResult v1 = pull(*parse_repo_ref("org/tiny@v1"), options(hub));
  EXPECT_EQ(v1.commit, kCommitV1);
  EXPECT_EQ(v1.downloaded, 0);  // same content: links to the blobs main already fetched
  for (const auto& q : hub.requests()) EXPECT_NE(q.path.rfind("/cdn/", 0), 0u) << q.path;
  EXPECT_EQ(slurp(repo_dir() / "refs" / "v1"), kCommitV1);
  EXPECT_EQ(slurp(repo_dir() / "refs" / "main"), kCommitMain);
  EXPECT_EQ(*find_snapshot(cache_, *parse_repo_ref("org/tiny@v1")),
            repo_dir() / "snapshots" / kCommitV1);
  // A commit-hash revision gets its snapshot but no ref.
  fs::remove_all(repo_dir());
  PullResult by_hash = pull(*parse_repo_ref("org/tiny@" + kCommitV1), options(hub));
  EXPECT_EQ(by_hash.snapshot, repo_dir() / "snapshots" / kCommitV1);
  EXPECT_FALSE(fs::exists(repo_dir() / "refs"));
  EXPECT_TRUE(find_snapshot(cache_, *parse_repo_ref("org/tiny@" + kCommitV1)));
}

TEST_F(Hub, InterruptedTransferResumesWithRange) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  const HubFile shard = fixture_files().at("model-00001-of-00002.safetensors");
  constexpr size_t kCut = 3 << 20;
  hub.drop_once(shard.etag, kCut);
  PullOptions once = options(hub);
  once.max_attempts = 1;
  EXPECT_THROW(pull(*parse_repo_ref("org/tiny"), once), Error);
  // The partial file stays for a resume; nothing of it is loadable.
  const fs::path partial = repo_dir() / "blobs" / (shard.etag + ".incomplete");
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), kCut);
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / shard.etag));
  EXPECT_FALSE(
      fs::exists(repo_dir() / "snapshots" / kCommitMain / "model-00001-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(repo_dir() / "refs" / "main"));
  EXPECT_FALSE(find_snapshot(cache_, *parse_repo_ref("org/tiny")));

  hub.clear_requests();
  PullResult r = pull(*parse_repo_ref("org/tiny"), options(hub));
  bool resumed = false;
  for (const auto& q : hub.requests())
    if (q.path == "/cdn/" + shard.etag) resumed = q.range == "bytes=" + std::to_string(kCut) + "-";
  EXPECT_TRUE(resumed);
  EXPECT_EQ(slurp(r.snapshot / "model-00001-of-00002.safetensors"), shard.content);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_TRUE(find_snapshot(cache_, *parse_repo_ref("org/tiny")));
}

TEST_F(Hub, ACutConnectionIsRetriedWithinOnePull) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  const HubFile tok = fixture_files().at("tokenizer.json");
  hub.drop_once(tok.etag, 12345);
  PullResult r = pull(*parse_repo_ref("org/tiny"), options(hub));
  int gets = 0;
  std::string last_range;
  for (const auto& q : hub.requests())
    if (q.path == "/cdn/" + tok.etag) ++gets, last_range = q.range;
  EXPECT_EQ(gets, 2);
  EXPECT_EQ(last_range, "bytes=12345-");
  EXPECT_EQ(slurp(r.snapshot / "tokenizer.json"), tok.content);
}

TEST_F(Hub, AServerThatIgnoresRangeRestartsTheFile) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  const HubFile tok = fixture_files().at("tokenizer.json");
  hub.drop_once(tok.etag, 54321);
  hub.ignore_ranges(true);
  PullResult r = pull(*parse_repo_ref("org/tiny"), options(hub));
  std::string last_range;
  for (const auto& q : hub.requests())
    if (q.path == "/cdn/" + tok.etag) last_range = q.range;
  EXPECT_EQ(last_range, "bytes=54321-");  // asked to resume, got the whole file with 200
  EXPECT_EQ(slurp(r.snapshot / "tokenizer.json"), tok.content);
}

TEST_F(Hub, CorruptFileIsRejectedAndNothingUsableIsLeft) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  const HubFile shard = fixture_files().at("model-00002-of-00002.safetensors");
  hub.corrupt(shard.etag);
  try {
    pull(*parse_repo_ref("org/tiny"), options(hub));
    FAIL() << "a corrupt file was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sha256"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("model-00002-of-00002.safetensors"), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / shard.etag));
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (shard.etag + ".incomplete")));
  EXPECT_FALSE(
      fs::exists(repo_dir() / "snapshots" / kCommitMain / "model-00002-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(repo_dir() / "refs" / "main"));
  // The CLI refuses to load it: the model is not in the cache.
  CliRun r = run("ask -m org/tiny -p hi", hub.url());
  expect_one_line_error(r);
  EXPECT_NE(r.err.find("ovis pull org/tiny"), std::string::npos) << r.err;
  // Once the hub serves the right bytes, the next pull completes.
  hub.corrupt("");
  PullResult ok = pull(*parse_repo_ref("org/tiny"), options(hub));
  EXPECT_EQ(slurp(ok.snapshot / "model-00002-of-00002.safetensors"), shard.content);
}

TEST_F(Hub, CliPullThenAskAndGenerateByName) {
  FakeHub hub;
  hub.add_repo("org/tiny", tiny_repo());
  hub.add_repo("AIDC-AI/Ovis-U1-3B", tiny_repo());
  CliRun p = run("pull org/tiny", hub.url());
  ASSERT_EQ(p.code, 0) << p.err;
  EXPECT_EQ(p.out, (repo_dir() / "snapshots" / kCommitMain).string() + "\n");
  EXPECT_NE(p.err.find("MiB/s"), std::string::npos) << p.err;  // the progress bar
  EXPECT_NE(p.err.find("pulled org/tiny"), std::string::npos) << p.err;
  CliRun a = run(ask_args() + " -m org/tiny", hub.url());
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.out, golden_answer());

  // Without -m: the default model, downloaded on first use by --pull.
  CliRun d = run("--pull " + ask_args(), hub.url());
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out, golden_answer());
  EXPECT_TRUE(find_snapshot(cache_, *parse_repo_ref("AIDC-AI/Ovis-U1-3B")));
  hub.clear_requests();
  const fs::path out = dir_ / "cat.png";
  CliRun g = run("generate -p 'a cat' -W 32 -H 32 --steps 1 -o " + out.string(), hub.url());
  ASSERT_EQ(g.code, 0) << g.err;
  EXPECT_TRUE(hub.requests().empty());  // found in the cache: no network
  auto text = read_png_text(out.string());
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text[0].second.find("Model: Ovis-U1-3B"), std::string::npos) << text[0].second;
}

}  // namespace
