// Fuzzes multipart/form-data edit requests as the server reads them: cpp-httplib's streaming
// multipart parser feeding the bounded form reader, then the edit-form rules and the image
// decode. Input: the boundary on the first line, the raw body after it. cpp-httplib keeps its
// parser internal, so the whole request goes through the server's own request processing
// (Server::process_request) over an in-memory stream: the production path, without sockets or
// threads. The answer must be 200 or a 4xx.
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "serve/api_error.hpp"
#include "serve/image_wire.hpp"
#include "serve/request_body.hpp"

namespace {

// One request's bytes in, the response out.
class MemoryStream final : public httplib::Stream {
 public:
  explicit MemoryStream(std::string in) : in_(std::move(in)) {}
  bool is_readable() const override { return pos_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, in_.size() - pos_);
    std::memcpy(ptr, in_.data() + pos_, n);
    pos_ += n;
    return ssize_t(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out.append(ptr, size);
    return ssize_t(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  // cpp-httplib polls the socket in places; an fd that is always readable and writable (one end
  // of a socket pair with a byte waiting) answers at once, where -1 would wait out the timeout.
  socket_t socket() const override {
    static const int fd = [] {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) __builtin_trap();
      if (::write(sv[1], "x", 1) != 1) __builtin_trap();
      return sv[0];
    }();
    return fd;
  }

  std::string out;

 private:
  std::string in_;
  size_t pos_ = 0;
};

class EditServer : public httplib::Server {
 public:
  EditServer() {
    limits.max_body_bytes = 1 << 20;
    limits.max_pixels = 1 << 20;
    set_payload_max_length(limits.max_body_bytes);
    Post("/v1/images/edits", [this](const httplib::Request& req, httplib::Response& res,
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
  }
  // The status line of the answer to `request`.
  int answer(const std::string& request) {
    MemoryStream s(request);
    bool closed = false;
    process_request(s, true, closed, nullptr);
    if (s.out.rfind("HTTP/1.1 ", 0) != 0) return 0;
    return std::atoi(s.out.c_str() + 9);
  }
  ovis::serve::Limits limits;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static EditServer* server = new EditServer();  // lives until exit, like the fuzzer
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nl = input.find('\n');
  std::string boundary = input.substr(0, std::min<size_t>(nl, 70));
  for (char& c : boundary)
    if (c == '\r' || c == '\0' || c == '\n') c = '-';  // keep the header line well formed
  const std::string body = nl == std::string::npos ? "" : input.substr(nl + 1);
  const std::string request =
      "POST /v1/images/edits HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
      "boundary=" +
      boundary + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  const int status = server->answer(request);
  if (status < 200 || status >= 500) __builtin_trap();
  return 0;
}
