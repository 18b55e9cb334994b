// Tells whether the client of a request has gone away, while its handler waits for the model.
//
// cpp-httplib 0.11 (Debian bookworm) gives handlers no access to their socket; streamed responses
// can ask DataSink::is_writable(), but a handler that waits before answering cannot. The socket
// is found once per request among the process's descriptors by its two endpoints (the request
// carries both), then polled: the peer's FIN or RST shows as POLLRDHUP/POLLHUP/POLLERR.
#pragma once
#include <string>

namespace ovis::serve {

class ConnectionWatch {
 public:
  ConnectionWatch(const std::string& local_addr, int local_port, const std::string& remote_addr,
                  int remote_port);
  // True once the peer has closed or reset the connection. False if the socket was not found.
  bool closed() const;
  bool found() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace ovis::serve
