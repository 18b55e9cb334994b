// Blocking HTTP(S) requests through libcurl, for talking to the hub. Transport failures (refused,
// reset, timed out, cut short) throw TransferError; HTTP statuses are returned, never thrown.
// One client holds one connection cache; it is not shared between threads.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace ovis::hub {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // of the final response, names lowercased
  std::string body;  // get(); for download(), the (bounded) body of an error status
  std::string url;   // the URL that answered (after redirects)
  // The value of a header (name in lowercase), "" when absent.
  std::string header(const std::string& name) const;
};

class TransferError : public Error {
 public:
  TransferError(const std::string& msg, bool retryable) : Error(msg), retryable_(retryable) {}
  // Worth another attempt: the connection failed, stalled or was cut short.
  bool retryable() const { return retryable_; }

 private:
  bool retryable_;
};

// What download() does with the body of a successful (< 300) final response. A callback that
// throws aborts the transfer and its exception propagates out of download().
struct DownloadSink {
  std::function<void(long status)> on_start;  // once, before the first byte
  std::function<void(const char* data, size_t size)> on_data;
};

class HttpClient {
 public:
  HttpClient();
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // HEAD without following redirects (a 3xx comes back with its Location header).
  HttpResponse head(const std::string& url, const Headers& headers);
  // GET into memory, following redirects; throws ovis::Error past `max_body` bytes.
  HttpResponse get(const std::string& url, const Headers& headers, size_t max_body = 64 << 20);
  // GET streamed into `sink`, from byte `offset` on (a Range request when > 0), following
  // redirects. Error statuses (>= 300) return with their body and never reach the sink.
  HttpResponse download(const std::string& url, const Headers& headers, uint64_t offset,
                        const DownloadSink& sink);

 private:
  void* curl_;  // CURL*
};

// Percent-encoding of one URL path piece; '/' stays when `keep_slash` (file paths in a repo).
std::string url_escape(std::string_view s, bool keep_slash);

}  // namespace ovis::hub
