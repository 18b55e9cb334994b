#include "support/serve_process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "support/golden.hpp"

extern char** environ;

namespace ovis::test {

namespace {

int64_t status_field_kb(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoll(line.substr(key.size() + 1));
  return -1;
}

}  // namespace

ServeProcess::ServeProcess(const std::vector<std::string>& serve_args,
                           const std::vector<std::string>& global_args) {
  static int counter = 0;
  log_path_ = ::testing::TempDir() + "/ovis_serve_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter++) + ".log";
  std::vector<std::string> args = {OVIS_BINARY};
  args.insert(args.end(), global_args.begin(), global_args.end());
  args.push_back("serve");
  const bool has_model = std::find(serve_args.begin(), serve_args.end(), "-m") != serve_args.end();
  if (!has_model) {
    args.push_back("-m");
    args.push_back(fixture_dir());
  }
  args.push_back("--port");
  args.push_back("0");
  args.insert(args.end(), serve_args.begin(), serve_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  const int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << OVIS_BINARY;
    pid_ = -1;
    return;
  }
  const std::regex listening("listening on http://127\\.0\\.0\\.1:([0-9]+)");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (std::chrono::steady_clock::now() < deadline && running()) {
    std::smatch m;
    const std::string text = log();
    if (std::regex_search(text, m, listening)) {
      port_ = std::stoi(m[1]);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "ovis serve did not start:\n" << log();
}

ServeProcess::~ServeProcess() {
  if (pid_ > 0 && running()) stop(SIGKILL, std::chrono::seconds(10));
  std::remove(log_path_.c_str());
}

bool ServeProcess::running() const {
  if (pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  // Reaped here: remember that it is gone.
  const_cast<ServeProcess*>(this)->pid_ = -pid_;
  const_cast<ServeProcess*>(this)->exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return false;
}

int ServeProcess::stop(int sig, std::chrono::seconds limit) {
  if (pid_ > 0) {
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -pid_;
      return -1;
    }
  }
  return exit_status_;
}

std::string ServeProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool ServeProcess::wait_log(const std::string& text, std::chrono::seconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (log().find(text) != std::string::npos) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int64_t ServeProcess::rss_kb() const {
  return status_field_kb(pid_, "VmRSS");
}
int64_t ServeProcess::peak_rss_kb() const {
  return status_field_kb(pid_, "VmHWM");
}

httplib::Client ServeProcess::client(std::chrono::seconds read_timeout) const {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(read_timeout);
  c.set_connection_timeout(std::chrono::seconds(60));
  return c;
}

}  // namespace ovis::test
