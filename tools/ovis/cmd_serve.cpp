// `ovis serve`: load the model once and serve the OpenAI-compatible API and the web UI.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>

#include "cli_common.hpp"
#include "core/error.hpp"
#include "core/timer.hpp"
#include "ovis/ovis.hpp"
#include "serve/api_server.hpp"

namespace ovis::cli {

namespace {

struct ServeOptions {
  std::string model, host = "127.0.0.1", api_key, alias;
  int port = 8080;
  int max_queue = 16;
  int max_body_mb = 32;
  double max_megapixels = 16;
  int max_tokens = 2048, max_n = 4, max_steps = 100, max_side = 2048;
  bool no_log = false;
};

bool is_loopback_address(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// SIGINT/SIGTERM are blocked in every thread and taken by one waiting thread, so the stop runs
// as ordinary code (no async-signal restrictions).
class SignalWaiter {
 public:
  SignalWaiter() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // inherited by every thread started later
    thread_ = std::thread([this] {
      const timespec tick{0, 100 * 1000 * 1000};
      while (!done_.load()) {
        const int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig != SIGINT && sig != SIGTERM) continue;
        std::function<void()> stop;
        {
          std::lock_guard<std::mutex> lock(mu_);
          stop = on_signal_;
        }
        std::fprintf(stderr, "\n%s: stopping (finishing or cancelling running jobs)\n",
                     sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (!stop) std::_Exit(0);  // still loading: nothing to clean up
        stop();
        return;
      }
    });
  }
  ~SignalWaiter() {
    done_ = true;
    thread_.join();
  }
  void on_signal(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(mu_);
    on_signal_ = std::move(fn);
  }

 private:
  sigset_t set_;
  std::mutex mu_;
  std::function<void()> on_signal_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int run_serve(const ServeOptions& o, const GlobalOptions& g) {
  if (o.port < 0 || o.port > 65535) fail("--port must be between 0 and 65535");
  if (o.max_queue < 1 || o.max_queue > 1024) fail("--max-queue must be between 1 and 1024");
  if (o.max_body_mb < 1 || o.max_body_mb > 1024) fail("--max-body-mb must be between 1 and 1024");
  if (!(o.max_megapixels > 0 && o.max_megapixels <= 64))
    fail("--max-megapixels must be in (0, 64]");
  if (o.max_tokens < 1 || o.max_tokens > 32768) fail("--max-tokens must be between 1 and 32768");
  if (o.max_n < 1 || o.max_n > 64) fail("--max-n must be between 1 and 64");
  if (o.max_steps < 1 || o.max_steps > 1000) fail("--max-steps must be between 1 and 1000");
  if (o.max_side < 16 || o.max_side > 4096) fail("--max-size must be between 16 and 4096");

  SignalWaiter signals;
  Timer t;
  const ResolvedModel model = resolve_model(o.model, g);
  auto pipe = Pipeline::load(model.folder, load_options(g));
  serve::ServerOptions so;
  so.model_name = model.name;
  so.model_id = o.alias.empty() ? model.name : o.alias;
  so.api_key = o.api_key;
  so.loopback_hosts_only = is_loopback_address(o.host);
  so.log_requests = !o.no_log;
  so.limits.max_queue = size_t(o.max_queue);
  so.limits.max_body_bytes = size_t(o.max_body_mb) << 20;
  so.limits.max_pixels = int64_t(o.max_megapixels * 1e6);
  so.limits.max_tokens = o.max_tokens;
  so.limits.default_max_tokens = std::min(512, o.max_tokens);
  so.limits.max_n = o.max_n;
  so.limits.max_steps = o.max_steps;
  so.limits.max_side = o.max_side;
  serve::ApiServer server(*pipe, so);
  if (!server.bind(o.host, o.port)) fail("cannot listen on ", o.host, ":", o.port);
  signals.on_signal([&server] { server.stop(); });
  const std::string shown_host =
      o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  std::fprintf(stderr,
               "ovis serve: %s loaded in %.1f s [%s, %d threads]; listening on http://%s:%d "
               "(web UI at /, API at /v1)%s\n",
               so.model_id.c_str(), t.seconds(), precision_name(pipe->precision()), pipe->threads(),
               shown_host.c_str(), server.port(), o.api_key.empty() ? "" : "; API key required");
  std::fflush(stderr);
  server.serve();
  std::fprintf(stderr, "ovis serve: stopped\n");
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, GlobalOptions& g, int& exit_code) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve the model over an OpenAI-compatible HTTP API (chat with images, image generation "
      "and edits) with a web UI at /");
  cmd->add_option("-m,--model", o->model, kModelHelp);
  cmd->add_option("--host", o->host,
                  "Address to listen on (loopback by default; 0.0.0.0 exposes the server)")
      ->capture_default_str();
  cmd->add_option("--port", o->port, "Port (0 = any free port, printed)")->capture_default_str();
  cmd->add_option("--api-key", o->api_key,
                  "Require \"Authorization: Bearer KEY\" on /v1/* (default: the OVIS_API_KEY "
                  "environment variable, if set)")
      ->envname("OVIS_API_KEY");
  cmd->add_option("--alias", o->alias,
                  "Model id reported by the API (default: the model's name, as -m resolves it)");
  cmd->add_option("--max-queue", o->max_queue,
                  "Jobs that may wait for the model; more are answered 429 with Retry-After")
      ->capture_default_str();
  cmd->add_option("--max-body-mb", o->max_body_mb, "Largest request body, in MiB (413 above)")
      ->capture_default_str();
  cmd->add_option("--max-megapixels", o->max_megapixels,
                  "Decoded pixels of a request's images together, in millions (400 above)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "Largest chat max_tokens")->capture_default_str();
  cmd->add_option("--max-n", o->max_n, "Most images per generation or edit request")
      ->capture_default_str();
  cmd->add_option("--max-steps", o->max_steps, "Most denoising steps per image")
      ->capture_default_str();
  cmd->add_option("--max-size", o->max_side, "Largest generated width or height")
      ->capture_default_str();
  cmd->add_flag("--no-log", o->no_log, "Do not log one line per request on stderr");
  cmd->callback([o, &g, &exit_code] { exit_code = run_serve(*o, g); });
}

}  // namespace ovis::cli
