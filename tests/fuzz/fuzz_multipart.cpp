// Fuzzes multipart/form-data edit requests as the server reads them: cpp-httplib's streaming
// multipart parser feeding the bounded form reader, then the edit-form rules and the image
// decode. Input: the boundary on the first line, the raw body after it. The bytes travel over a
// loopback connection to an in-process server (cpp-httplib keeps its parser internal), so every
// input exercises exactly the production path; the answer must be 200 or a 4xx.
#include <httplib.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "serve/api_error.hpp"
#include "serve/image_wire.hpp"
#include "serve/request_body.hpp"

namespace {

struct LoopbackServer {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  ovis::serve::Limits limits;

  LoopbackServer() {
    limits.max_body_bytes = 1 << 20;
    limits.max_pixels = 1 << 20;
    server.new_task_queue = [] { return new httplib::ThreadPool(1); };
    server.set_payload_max_length(limits.max_body_bytes);
    server.set_tcp_nodelay(true);  // no Nagle/delayed-ACK stall per request
    server.Post("/v1/images/edits", [this](const httplib::Request& req, httplib::Response& res,
                                           const httplib::ContentReader& reader) {
      try {
        const ovis::serve::FormFields f = ovis::serve::read_form_body(req, reader, limits);
        ovis::serve::parse_edit_form(f, limits);
        res.set_content("{}", "application/json");
      } catch (const ovis::serve::ApiError& e) {
        res.status = e.status();
        res.set_content(e.body(), "application/json");
      }
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
};

LoopbackServer& loopback() {
  static LoopbackServer* s = new LoopbackServer();  // lives until exit, like the fuzzer
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  std::string boundary = input.substr(0, std::min<size_t>(nl, 70));
  for (char& c : boundary)
    if (c == '\r' || c == '\0') c = '-';  // keep the header line well formed
  const std::string body = nl == std::string::npos ? "" : input.substr(nl + 1);
  LoopbackServer& s = loopback();
  static httplib::Client* client = [&] {
    auto* c = new httplib::Client("127.0.0.1", s.port);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_read_timeout(std::chrono::seconds(30));
    return c;
  }();
  auto r = client->Post("/v1/images/edits", body, "multipart/form-data; boundary=" + boundary);
  if (r && (r->status >= 500 || r->status < 200)) __builtin_trap();
  return 0;
}
