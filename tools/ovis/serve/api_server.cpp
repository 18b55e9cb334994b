#include "serve/api_server.hpp"

#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "serve/api_error.hpp"
#include "serve/chat_wire.hpp"
#include "serve/connection_watch.hpp"
#include "serve/image_wire.hpp"
#include "serve/model_jobs.hpp"
#include "serve/request_body.hpp"
#include "serve/sse.hpp"
#include "serve/ui_page.hpp"

namespace ovis::serve {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The request being handled on this connection thread (cpp-httplib runs a request's routing,
// handler, response and log callback on one thread).
thread_local Clock::time_point t_request_start;
thread_local bool t_request_started = false;

constexpr auto kPoll = 200ms;     // how often waiting handlers look for a closed connection
constexpr auto kKeepAlive = 15s;  // idle SSE streams send a comment this often

int64_t unix_now() {
  return int64_t(std::time(nullptr));
}

uint64_t random_u64() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return rng();
}

std::string completion_id() {
  char buf[32];
  std::snprintf(buf, sizeof buf, "chatcmpl-%016llx", static_cast<unsigned long long>(random_u64()));
  return buf;
}

void send_json(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(e.body(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

// Host names a loopback-bound server answers to.
bool is_loopback_host(const std::string& host_header) {
  std::string host = host_header;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(
        1, host.find(']') == std::string::npos ? std::string::npos : host.find(']') - 1);
  } else if (const size_t colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  for (char& c : host) c = char(std::tolower(static_cast<unsigned char>(c)));
  return host == "127.0.0.1" || host == "localhost" || host == "::1" ||
         (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0);
}

// Constant-time comparison of the presented and expected API keys.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned diff = a.size() != b.size();
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i)
    diff |= unsigned(i < a.size() ? a[i] : 0) ^ unsigned(i < b.size() ? b[i] : 0);
  return diff == 0;
}

// Checked between the events a waiting handler receives (they may come faster than kPoll): a
// gone client cancels its job.
bool client_gone(const ConnectionWatch& watch, Job& job) {
  if (!watch.closed()) return false;
  job.cancel(CancelReason::ClientGone);
  return true;
}

const char* status_text_for_log(int status) {
  return status == 499 ? " (client gone)" : "";
}

Json progress_json(const JobEvent& e, const char* type) {
  const ProgressEvent& p = e.progress;
  Json j = {{"type", type},   {"index", e.index}, {"stage", p.stage},
            {"step", p.step}, {"total", p.total}, {"elapsed", p.elapsed_s}};
  j["eta"] = p.step > 0 && p.total >= p.step ? Json(p.elapsed_s / p.step * double(p.total - p.step))
                                             : Json(nullptr);
  return j;
}

// What a stream writes for one job event: `text` ("" writes nothing); `last` ends the stream
// with [DONE].
struct SseChunk {
  std::string text;
  bool last = false;
};
using SseEncoder = std::function<SseChunk(const JobEvent&)>;

// Streams `job` as server-sent events: `opening` (if any), then each event as `encode` writes it,
// a keep-alive comment while idle. A failed write or a closed connection cancels the job;
// `open_streams` counts the stream until the response ends.
void stream_job(httplib::Response& res, std::shared_ptr<Job> job, std::atomic<int>& open_streams,
                std::string opening, SseEncoder encode) {
  struct Stream {
    std::shared_ptr<Job> job;
    std::string opening;
    SseEncoder encode;
    Clock::time_point last_write = Clock::now();
  };
  auto st = std::make_shared<Stream>(Stream{std::move(job), std::move(opening), std::move(encode)});
  ++open_streams;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) {
          st->last_write = Clock::now();
          return sink.write(s.data(), s.size());
        };
        bool ok = true;
        if (!st->opening.empty()) {
          ok = write(std::exchange(st->opening, std::string()));
        } else if (std::optional<JobEvent> e = st->job->next(kPoll)) {
          const SseChunk c = st->encode(*e);
          if (c.last) {
            ok = write(c.text + sse_done());
            sink.done();
          } else if (!c.text.empty()) {
            ok = write(c.text);
          }
        } else if (!sink.is_writable()) {
          ok = false;
        } else if (Clock::now() - st->last_write > kKeepAlive) {
          ok = write(sse_comment("waiting"));
        }
        if (!ok) st->job->cancel(CancelReason::ClientGone);
        return ok;
      },
      [st, &open_streams](bool success) {
        if (!success) st->job->cancel(CancelReason::ClientGone);
        --open_streams;
      });
}

}  // namespace

ApiServer::ApiServer(Pipeline& pipeline, ServerOptions options)
    : pipeline_(pipeline), opt_(std::move(options)), scheduler_(pipeline, opt_.limits.max_queue) {
  // Enough connection threads that every queued job, the running one and a few quick requests
  // (health, UI, refusals) are served at once.
  const size_t threads = opt_.limits.max_queue + 8;
  http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_.set_payload_max_length(opt_.limits.max_body_bytes);
  http_.set_tcp_nodelay(true);  // SSE events are small writes: send each at once
  // cpp-httplib closes a connection whose first request takes longer than this to arrive after a
  // worker picks it up (a starved client under load can be that slow).
  http_.set_keep_alive_timeout(5);
  // Remember the listening socket (the options run on it before bind) to widen its backlog.
  http_.set_socket_options([this](socket_t sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd_ = sock;
  });
  http_.set_read_timeout(10);
  http_.set_write_timeout(30);
  install_routes();
}

ApiServer::~ApiServer() {
  stop();
}

bool ApiServer::bind(const std::string& host, int port) {
  if (port == 0) {
    port_ = http_.bind_to_any_port(host);
  } else if (http_.bind_to_port(host, port)) {
    port_ = port;
  }
  if (port_ <= 0) return false;
  // cpp-httplib listens with a backlog of 5: a burst of clients overflows it, their handshakes
  // stall in retransmission and the request arrives after the keep-alive wait. Calling listen()
  // again on the listening socket sets a new backlog.
  if (listen_fd_ >= 0) ::listen(listen_fd_, SOMAXCONN);
  return true;
}

void ApiServer::serve() {
  http_.listen_after_bind();
}

void ApiServer::stop() {
  if (stopping_.exchange(true)) return;
  scheduler_.shutdown();
  // Streams now hold their terminal event; let them write it before connections close.
  const auto deadline = Clock::now() + 3s;
  while (open_streams_.load() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  http_.stop();
}

void ApiServer::reply_error(httplib::Response& res, const ApiError& e) const {
  send_error(res, e);
  if (e.status() == 429) res.set_header("Retry-After", std::to_string(scheduler_.retry_after_s()));
  if (e.status() == 413) res.set_header("Connection", "close");  // the body may be unread
}

void ApiServer::check_access(const httplib::Request& req, bool api) const {
  const std::string host = req.get_header_value("Host");
  if (opt_.loopback_hosts_only && !host.empty() && !is_loopback_host(host))
    throw ApiError(403, "permission_error", "host_not_allowed",
                   "this server listens on a loopback address and answers only to "
                   "localhost/127.0.0.1/[::1] Host names");
  if (req.has_header("Origin")) {
    const std::string origin = req.get_header_value("Origin");
    if (origin != "http://" + host && origin != "https://" + host)
      throw ApiError(403, "permission_error", "cross_origin",
                     "cross-origin requests are refused (Origin does not match Host)");
  }
  if (api && !opt_.api_key.empty()) {
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) != 0 || !same_secret(auth.substr(prefix.size()), opt_.api_key))
      throw ApiError(401, "authentication_error", "invalid_api_key",
                     "missing or wrong API key: send \"Authorization: Bearer <key>\"");
  }
}

void ApiServer::submit(const std::shared_ptr<Job>& job) {
  switch (scheduler_.submit(job)) {
    case Scheduler::Admission::Accepted:
      return;
    case Scheduler::Admission::QueueFull:
      throw ApiError(429, "rate_limit_error", "queue_full",
                     "the job queue is full (" + std::to_string(opt_.limits.max_queue) +
                         " waiting); retry later");
    case Scheduler::Admission::ShuttingDown:
      throw ApiError(503, "server_error", "shutting_down", "the server is shutting down");
  }
}

void ApiServer::install_routes() {
  http_.set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    t_request_start = Clock::now();
    t_request_started = true;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    if (opt_.log_requests) {
      char took[32] = "-";
      if (t_request_started)
        std::snprintf(took, sizeof took, "%.3f s",
                      std::chrono::duration<double>(Clock::now() - t_request_start).count());
      std::fprintf(stderr, "%s %s %s %d%s %s\n", req.remote_addr.c_str(),
                   req.method.empty() ? "-" : req.method.c_str(),
                   req.path.empty() ? "-" : req.path.c_str(), res.status,
                   status_text_for_log(res.status), took);
    }
    t_request_started = false;
  });
  // Errors cpp-httplib raises itself (unknown route, malformed request line, oversized body)
  // get the OpenAI error body too.
  http_.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty() || res.content_provider_)
          return httplib::Server::HandlerResponse::Unhandled;
        const char* what = res.status == 404   ? "no such endpoint"
                           : res.status == 413 ? "the request body is too large"
                           : res.status == 405 ? "method not allowed"
                                               : "the request could not be read";
        res.set_content(error_body(res.status, what), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        send_error(res, 500, error_body(500, "internal error: " + what));
      });

  http_.Get("/", [this](const httplib::Request& req, httplib::Response& res) {
    try {
      check_access(req, false);
    } catch (const ApiError& e) {
      return send_error(res, e);
    }
    const std::string_view page = ui_page();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
    // Everything the page needs is inside it or on this server.
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data: blob:; style-src 'unsafe-inline'; "
                   "script-src 'unsafe-inline'; connect-src 'self'");
    res.set_header("Cache-Control", "no-store");
  });
  http_.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const Scheduler::Stats s = scheduler_.stats();
    const bool up = !stopping_.load();
    send_json(res, up ? 200 : 503,
              {{"status", up ? "ok" : "shutting_down"},
               {"model", opt_.model_id},
               {"queued", s.queued},
               {"busy", s.busy},
               {"completed", s.completed}});
  });
  auto model_json = [this] {
    return Json{
        {"id", opt_.model_id}, {"object", "model"}, {"created", 0}, {"owned_by", "ovis.cpp"}};
  };
  http_.Get("/v1/models", [this, model_json](const httplib::Request& req, httplib::Response& res) {
    try {
      check_access(req, true);
      send_json(res, 200, {{"object", "list"}, {"data", Json::array({model_json()})}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
  http_.Get(R"(/v1/models/(.+))",
            [this, model_json](const httplib::Request& req, httplib::Response& res) {
              try {
                check_access(req, true);
                if (req.matches[1] != opt_.model_id)
                  throw ApiError(404, "invalid_request_error", "model_not_found",
                                 "the only model served is '" + opt_.model_id + "'");
                send_json(res, 200, model_json());
              } catch (const ApiError& e) {
                send_error(res, e);
              }
            });
  http_.Post("/v1/chat/completions",
             [this](const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader) { handle_chat(req, res, reader); });
  http_.Post("/v1/images/generations", [this](const httplib::Request& req, httplib::Response& res,
                                              const httplib::ContentReader& reader) {
    handle_images(req, res, reader, false);
  });
  http_.Post("/v1/images/edits", [this](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& reader) {
    handle_images(req, res, reader, true);
  });
}

void ApiServer::handle_chat(const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& reader) {
  std::shared_ptr<Job> job;
  ChatCompletionRequest parsed;
  try {
    const std::string body = read_json_body(req, reader, opt_.limits);
    check_access(req, true);
    parsed = parse_chat_completion(body, opt_.limits);
    parsed.chat.sampling.seed = parsed.seed.value_or(random_u64());
    job = make_chat_job(std::move(parsed.chat));
    submit(job);
  } catch (const ApiError& e) {
    return reply_error(res, e);
  }
  const std::string id = completion_id();
  const int64_t created = unix_now();
  const std::string model = opt_.model_id;

  if (!parsed.stream) {
    ConnectionWatch watch(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    while (true) {
      std::optional<JobEvent> e = job->next(kPoll);
      if (client_gone(watch, *job)) return send_error(res, 499, error_body(499, "client gone"));
      if (!e) continue;
      if (e->type == JobEvent::Type::Finished)
        return send_json(res, 200, chat_completion_json(id, created, model, e->answer));
      if (e->type == JobEvent::Type::Failed) return send_error(res, e->status, e->error_body);
    }
  }

  const std::string opening = sse_event(
      chat_chunk_json(id, created, model, {{"role", "assistant"}, {"content", ""}}, nullptr));
  stream_job(
      res, job, open_streams_, opening,
      [id, created, model, include_usage = parsed.include_usage](const JobEvent& e) {
        switch (e.type) {
          case JobEvent::Type::Text:
            return SseChunk{
                sse_event(chat_chunk_json(id, created, model, {{"content", e.text}}, nullptr))};
          case JobEvent::Type::Finished: {
            std::string out = sse_event(chat_chunk_json(
                id, created, model, Json::object(), finish_reason_name(e.answer.finish_reason)));
            if (include_usage)
              out += sse_event(chat_usage_chunk_json(id, created, model, e.answer));
            return SseChunk{std::move(out), true};
          }
          case JobEvent::Type::Failed:
            return SseChunk{sse_event(Json::parse(e.error_body, nullptr, false)), true};
          default:
            return SseChunk{};
        }
      });
}

void ApiServer::handle_images(const httplib::Request& req, httplib::Response& res,
                              const httplib::ContentReader& reader, bool edit) {
  std::shared_ptr<Job> job;
  ImageFormat format = ImageFormat::Png;
  bool stream = false;
  try {
    ImageJobRequest parsed;
    if (edit) {
      const FormFields fields = read_form_body(req, reader, opt_.limits);
      check_access(req, true);
      parsed = parse_edit_form(fields, opt_.limits);
    } else {
      const std::string body = read_json_body(req, reader, opt_.limits);
      check_access(req, true);
      parsed = parse_generation_request(body, opt_.limits);
    }
    if (!parsed.seed) parsed.seed = random_u64() & 0x7fffffffu;
    format = parsed.format;
    stream = parsed.stream;
    job = make_image_job(std::move(parsed), opt_.model_name);
    submit(job);
  } catch (const ApiError& e) {
    return reply_error(res, e);
  }
  const int64_t created = unix_now();

  if (!stream) {
    ConnectionWatch watch(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
    std::vector<ProducedImage> images;
    while (true) {
      std::optional<JobEvent> e = job->next(kPoll);
      if (client_gone(watch, *job)) return send_error(res, 499, error_body(499, "client gone"));
      if (!e) continue;
      if (e->type == JobEvent::Type::Image) images.push_back(std::move(e->image));
      if (e->type == JobEvent::Type::Finished)
        return send_json(res, 200, images_response_json(created, format, images));
      if (e->type == JobEvent::Type::Failed) return send_error(res, e->status, e->error_body);
    }
  }

  const char* progress_type = edit ? "image_edit.progress" : "image_generation.progress";
  const char* completed_type = edit ? "image_edit.completed" : "image_generation.completed";
  stream_job(
      res, job, open_streams_, "",
      [created, format, progress_type, completed_type](const JobEvent& e) {
        switch (e.type) {
          case JobEvent::Type::Progress:
            return SseChunk{sse_event(progress_json(e, progress_type), progress_type)};
          case JobEvent::Type::Image: {
            Json j = image_data_json(e.image);
            j["type"] = completed_type;
            j["index"] = e.index;
            j["created_at"] = created;
            j["output_format"] = format_name(format);
            j["size"] = std::to_string(e.image.width) + "x" + std::to_string(e.image.height);
            return SseChunk{sse_event(j, completed_type)};
          }
          case JobEvent::Type::Finished:
            return SseChunk{"", true};
          case JobEvent::Type::Failed:
            return SseChunk{sse_event(Json::parse(e.error_body, nullptr, false), "error"), true};
          default:
            return SseChunk{};
        }
      });
}

}  // namespace ovis::serve
