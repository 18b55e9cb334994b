// An `ovis serve` child process on a free loopback port, for end-to-end server tests.
#pragma once
#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace ovis::test {

class ServeProcess {
 public:
  // Runs `ovis <global_args> serve -m <fixture> --port 0 <serve_args>` with stderr captured (no
  // fixture -m when serve_args has its own), and waits (up to two minutes) until it listens.
  explicit ServeProcess(const std::vector<std::string>& serve_args = {},
                        const std::vector<std::string>& global_args = {"-t", "1"});
  ~ServeProcess();  // kills the process if it still runs
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const;
  // Sends `sig` and waits up to `limit` for the exit; returns the exit status, or -1 if the
  // process had to be killed (or died from a signal).
  int stop(int sig, std::chrono::seconds limit);
  std::string log() const;  // everything written to stderr so far
  // Waits up to `limit` for `text` to appear in the log (the server writes a request's log line
  // after its response has gone out, so a client can see the response first).
  bool wait_log(const std::string& text, std::chrono::seconds limit) const;
  int64_t rss_kb() const;       // VmRSS
  int64_t peak_rss_kb() const;  // VmHWM
  httplib::Client client(std::chrono::seconds read_timeout = std::chrono::seconds(300)) const;

 private:
  pid_t pid_ = -1;  // negated once reaped
  int exit_status_ = -1;
  int port_ = 0;
  std::string log_path_;
};

}  // namespace ovis::test
