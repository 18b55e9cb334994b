// A bare TCP connection to a loopback port, for tests that must control the bytes on the wire:
// malformed requests, and clients that hang up in the middle of a response.
#pragma once
#include <chrono>
#include <string>

namespace ovis::test {

class RawHttp {
 public:
  explicit RawHttp(int port);
  ~RawHttp();
  RawHttp(const RawHttp&) = delete;
  RawHttp& operator=(const RawHttp&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(const std::string& bytes);
  // Reads until `until` appears in what was received, the peer closes, or `limit` passes.
  // Returns everything received so far.
  std::string read_until(const std::string& until, std::chrono::milliseconds limit);
  void close();  // hangs up (immediately, with RST if unread data is pending)

 private:
  int fd_ = -1;
  std::string received_;
};

// The status code of a raw HTTP response ("HTTP/1.1 400 ..."), or 0.
int http_status(const std::string& response);

}  // namespace ovis::test
