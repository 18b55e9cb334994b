#include "hub/http_client.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <mutex>

namespace ovis::hub {

namespace {

constexpr const char* kUserAgent = "ovis.cpp/0.1.0";

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool retryable(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

// State shared with the libcurl callbacks of one request.
struct Transfer {
  CURL* curl = nullptr;
  HttpResponse response;
  const DownloadSink* sink = nullptr;  // download(): the body goes here once the status is known
  size_t max_body = 0;
  bool started = false;
  bool to_sink = false;
  std::exception_ptr error;  // thrown by a callback; rethrown after curl_easy_perform
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response.headers.clear();  // a new response (after a redirect or a 100 Continue)
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->response.headers[lower(trim(line.substr(0, colon)))] = trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t bytes = size * n;
  try {
    if (!t->started) {
      t->started = true;
      curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->response.status);
      t->to_sink = t->sink && t->response.status < 300;
      if (t->to_sink && t->sink->on_start) t->sink->on_start(t->response.status);
    }
    if (t->to_sink) {
      t->sink->on_data(data, bytes);
    } else {
      if (t->response.body.size() + bytes > t->max_body) {
        if (t->sink) return bytes;  // an error page: keep its start only
        fail("response body larger than ", t->max_body, " bytes");
      }
      t->response.body.append(data, bytes);
    }
  } catch (...) {
    t->error = std::current_exception();
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  return bytes;
}

HttpResponse perform(CURL* curl, const std::string& method, const std::string& url,
                     const Headers& headers, Transfer& t) {
  curl_slist* list = nullptr;
  for (const auto& [k, v] : headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  char errbuf[CURL_ERROR_SIZE] = {0};
  t.curl = curl;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // A transfer slower than 1 KiB/s for a minute counts as stalled (retryable).
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  if (method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(list);
  if (t.error) std::rethrow_exception(t.error);
  if (rc != CURLE_OK) {
    const std::string why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    throw TransferError(str(method, " ", url, ": ", trim(why)), retryable(rc));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.response.status);
  char* effective = nullptr;
  curl_easy_getinfo(curl, CURLINFO_EFFECTIVE_URL, &effective);
  t.response.url = effective ? effective : url;
  if (t.sink && !t.started && t.response.status < 300 && t.sink->on_start)
    t.sink->on_start(t.response.status);  // an empty body
  return std::move(t.response);
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

HttpClient::HttpClient() {
  global_init();
  curl_ = curl_easy_init();
  if (!curl_) fail("libcurl: cannot create a handle");
}

HttpClient::~HttpClient() {
  curl_easy_cleanup(static_cast<CURL*>(curl_));
}

HttpResponse HttpClient::head(const std::string& url, const Headers& headers) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  Transfer t;
  return perform(c, "HEAD", url, headers, t);
}

HttpResponse HttpClient::get(const std::string& url, const Headers& headers, size_t max_body) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
  Transfer t;
  t.max_body = max_body;
  return perform(c, "GET", url, headers, t);
}

HttpResponse HttpClient::download(const std::string& url, const Headers& headers, uint64_t offset,
                                  const DownloadSink& sink) {
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  const std::string range = std::to_string(offset) + "-";
  if (offset > 0) curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  Transfer t;
  t.sink = &sink;
  t.max_body = 64 << 10;
  return perform(c, "GET", url, headers, t);
}

std::string url_escape(std::string_view s, bool keep_slash) {
  global_init();
  std::string out;
  for (size_t start = 0;;) {
    const size_t slash = keep_slash ? s.find('/', start) : std::string_view::npos;
    const std::string_view piece =
        s.substr(start, slash == std::string_view::npos ? slash : slash - start);
    char* e = curl_easy_escape(nullptr, piece.data(), int(piece.size()));
    if (!e) fail("libcurl: cannot escape a URL piece");
    out += e;
    curl_free(e);
    if (slash == std::string_view::npos) return out;
    out += '/';
    start = slash + 1;
  }
}

}  // namespace ovis::hub
