// `ovis serve`: the OpenAI-compatible HTTP API and the web UI over one resident Pipeline.
//
//   GET  /                         the web UI (one embedded page)
//   GET  /health                   liveness and queue state
//   GET  /v1/models                the resident model
//   POST /v1/chat/completions      chat with images (data: URLs), streamed or not
//   POST /v1/images/generations    text-to-image (JSON)
//   POST /v1/images/edits          instruction editing (multipart/form-data)
#pragma once
#include <httplib.h>

#include <atomic>
#include <string>

#include "ovis/ovis.hpp"
#include "serve/api_error.hpp"
#include "serve/limits.hpp"
#include "serve/scheduler.hpp"

namespace ovis::serve {

struct ServerOptions {
  std::string model_id;    // the name /v1/models and every response report
  std::string model_name;  // recorded in each image's "parameters" (as the CLI records it)
  std::string api_key;     // non-empty: /v1/* needs "Authorization: Bearer <api_key>"
  // Bound to a loopback address: refuse requests whose Host is not a loopback name (DNS
  // rebinding). Cross-origin browser requests (Origin differing from Host) are always refused.
  bool loopback_hosts_only = true;
  Limits limits;
  bool log_requests = true;  // one line per request on stderr
};

class ApiServer {
 public:
  ApiServer(Pipeline& pipeline, ServerOptions options);
  ~ApiServer();

  // Binds host:port (port 0: any free port). False if it cannot be bound.
  bool bind(const std::string& host, int port);
  int port() const { return port_; }
  // Serves until stop(); returns once every connection is closed.
  void serve();
  // Graceful stop, callable from any thread: no new jobs (503), waiting and running jobs
  // cancelled at their next step or token, open streams given a moment to send their last
  // event, then the listener and connections close.
  void stop();

 private:
  void install_routes();
  void handle_chat(const httplib::Request& req, httplib::Response& res,
                   const httplib::ContentReader& reader);
  void handle_images(const httplib::Request& req, httplib::Response& res,
                     const httplib::ContentReader& reader, bool edit);
  void check_access(const httplib::Request& req, bool api) const;
  void reply_error(httplib::Response& res, const ApiError& e) const;
  void submit(const std::shared_ptr<Job>& job);

  Pipeline& pipeline_;
  ServerOptions opt_;
  Scheduler scheduler_;
  httplib::Server http_;
  int port_ = 0;
  int listen_fd_ = -1;  // the listening socket, once bound
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_streams_{0};
};

}  // namespace ovis::serve
