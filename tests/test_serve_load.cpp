// `ovis serve` under load and abuse, over loopback against the tiny fixture, bounded in count and
// time: 100 concurrent clients mixing chats and small images (every one answered 200 or 429,
// memory bounded, the server healthy after), clients that hang up mid-stream, and a stream of
// malformed requests (each answered 4xx or dropped, never a crash or a 5xx).
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "ovis/image_io.hpp"
#include "serve/base64.hpp"
#include "support/raw_http.hpp"
#include "support/serve_process.hpp"

using namespace ovis;
using namespace std::chrono_literals;
using Json = nlohmann::json;

namespace {

std::string raw_request(const std::string& method, const std::string& path, const std::string& body,
                        const std::string& content_type, const std::string& extra = "") {
  return method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
         (content_type.empty() ? "" : "Content-Type: " + content_type + "\r\n") + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

bool healthy(const test::ServeProcess& s) {
  auto r = s.client(30s).Get("/health");
  return r && r->status == 200 && Json::parse(r->body, nullptr, false)["status"] == "ok";
}

bool wait_idle(const test::ServeProcess& s, std::chrono::seconds limit) {
  auto cli = s.client(30s);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = cli.Get("/health");
    if (r) {
      const Json h = Json::parse(r->body, nullptr, false);
      if (h.is_object() && h["busy"] == false && h["queued"] == 0) return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(ServeLoad, HundredConcurrentClientsAreAllAnsweredAndMemoryStaysBounded) {
  test::ServeProcess s({"--max-queue", "8", "--no-log"});
  ASSERT_GT(s.port(), 0);
  const int64_t rss_start = s.rss_kb();
  const std::string png = [] {
    auto v = encode_image(Image::filled(24, 24, 1, 2, 3), ImageFormat::Png);
    return std::string(v.begin(), v.end());
  }();
  const std::string data_url =
      "data:image/png;base64," +
      serve::base64_encode(reinterpret_cast<const uint8_t*>(png.data()), png.size());

  constexpr int kClients = 100;
  std::vector<int> status(kClients, -1);
  std::vector<std::string> retry_after(kClients), error(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto cli = s.client(600s);
      auto send = [&]() -> httplib::Result {
        switch (i % 5) {
          case 0:
          case 1:
            return cli.Post("/v1/chat/completions",
                            Json{{"max_tokens", 2},
                                 {"stream", i % 2 == 0},
                                 {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
                                .dump(),
                            "application/json");
          case 2:
            return cli.Post("/v1/chat/completions",
                            Json{{"max_tokens", 2},
                                 {"messages",
                                  {{{"role", "user"},
                                    {"content",
                                     {{{"type", "image_url"}, {"image_url", {{"url", data_url}}}},
                                      {{"type", "text"}, {"text", "what?"}}}}}}}}
                                .dump(),
                            "application/json");
          case 3:
            return cli.Post(
                "/v1/images/generations",
                Json{{"prompt", "p"}, {"size", "32x32"}, {"steps", 1}, {"stream", i % 2 == 1}}
                    .dump(),
                "application/json");
          default:
            return cli.Post("/v1/images/edits",
                            httplib::MultipartFormDataItems{{"image", png, "a.png", "image/png"},
                                                            {"prompt", "blue", "", ""},
                                                            {"steps", "1", "", ""}});
        }
      };
      httplib::Result r = send();
      if (r) {
        status[size_t(i)] = r->status;
        retry_after[size_t(i)] = r->get_header_value("Retry-After");
      } else {
        error[size_t(i)] = httplib::to_string(r.error());
      }
    });
  }
  for (auto& t : threads) t.join();
  int ok = 0, busy = 0;
  for (int i = 0; i < kClients; ++i) {
    EXPECT_TRUE(status[size_t(i)] == 200 || status[size_t(i)] == 429)
        << "client " << i << ": " << status[size_t(i)] << " " << error[size_t(i)];
    ok += status[size_t(i)] == 200;
    if (status[size_t(i)] == 429) {
      ++busy;
      EXPECT_FALSE(retry_after[size_t(i)].empty());
    }
  }
  EXPECT_GT(ok, 0);
  std::printf(
      "[ load ] 100 clients: %d answered 200, %d answered 429; RSS %lld MiB at start, "
      "peak %lld MiB\n",
      ok, busy, static_cast<long long>(rss_start / 1024),
      static_cast<long long>(s.peak_rss_kb() / 1024));
  EXPECT_TRUE(healthy(s));
  EXPECT_TRUE(wait_idle(s, 120s));
  // Bounded: the queue, the body limit and the per-request pixel limit cap what requests can
  // hold; the tiny model's jobs need little. (ASan's shadow memory and quarantine included.)
  EXPECT_LT(s.peak_rss_kb() - rss_start, 1536 * 1024);
  EXPECT_EQ(s.stop(SIGTERM, 60s), 0);
}

TEST(ServeLoad, ClientsHangingUpMidStreamLeaveTheServerIdle) {
  test::ServeProcess s({"--max-queue", "32", "--max-steps", "1000", "--no-log"});
  std::vector<std::unique_ptr<test::RawHttp>> conns;
  for (int i = 0; i < 20; ++i) {
    const std::string body =
        i % 2 == 0
            ? Json{{"prompt", "p"}, {"size", "32x32"}, {"steps", 500}, {"stream", true}}.dump()
            : Json{{"max_tokens", 2000},
                   {"stream", true},
                   {"messages", {{{"role", "user"}, {"content", "hi"}}}}}
                  .dump();
    auto c = std::make_unique<test::RawHttp>(s.port());
    c->send(raw_request("POST", i % 2 == 0 ? "/v1/images/generations" : "/v1/chat/completions",
                        body, "application/json"));
    conns.push_back(std::move(c));
  }
  // The first job starts streaming; everyone hangs up, some before any byte arrived.
  conns[0]->read_until("data: ", 120s);
  for (size_t i = 0; i < conns.size(); ++i) {
    if (i % 3 == 0) conns[i]->read_until("data: ", 100ms);
    conns[i]->close();
  }
  EXPECT_TRUE(wait_idle(s, 120s));
  EXPECT_TRUE(healthy(s));
  auto r = s.client().Post("/v1/chat/completions",
                           R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1})",
                           "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.stop(SIGTERM, 60s), 0);
}

TEST(ServeLoad, MalformedRequestsGet4xxAndNeverHurtTheServer) {
  test::ServeProcess s({"--max-body-mb", "1", "--no-log"});
  const std::string png = [] {
    auto v = encode_image(Image::filled(8, 8, 1, 2, 3), ImageFormat::Png);
    return std::string(v.begin(), v.end());
  }();
  const std::string mp = "multipart/form-data; boundary=XyZ";
  std::vector<std::pair<std::string, std::string>> cases = {
      {"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n"},
      {"bad request line", "GET\r\n\r\n"},
      {"unknown method", "BREW /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
      {"huge uri", "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"},
      {"huge header", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " +
                          std::string(100000, 'b') + "\r\n\r\n"},
      {"bad range", "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nRange: bytes=zz\r\n\r\n"},
      {"invalid json",
       raw_request("POST", "/v1/chat/completions", "{\"messages\":[", "application/json")},
      {"json array", raw_request("POST", "/v1/chat/completions", "[]", "application/json")},
      {"json nesting",
       raw_request("POST", "/v1/chat/completions", std::string(200000, '['), "application/json")},
      {"wrong types",
       raw_request("POST", "/v1/chat/completions",
                   R"({"messages":[{"role":"user","content":{"a":1}}],"max_tokens":"x"})",
                   "application/json")},
      {"null everywhere",
       raw_request("POST", "/v1/images/generations", R"({"prompt":null,"n":null,"size":null})",
                   "application/json")},
      {"broken base64",
       raw_request(
           "POST", "/v1/chat/completions",
           R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR%%%"}}]}]})",
           "application/json")},
      {"image that is not one",
       raw_request(
           "POST", "/v1/chat/completions",
           R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}}]}]})",
           "application/json")},
      {"invalid utf-8", raw_request("POST", "/v1/chat/completions",
                                    "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\x28\"}]}",
                                    "application/json")},
      {"too large", raw_request("POST", "/v1/images/generations", std::string(2 << 20, 'x'),
                                "application/json")},
      {"declared too large",
       "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
       "99999999999\r\n\r\n{}"},
      {"negative length",
       "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n{}"},
      {"bad chunks",
       "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
       "zz\r\n{}\r\n0\r\n\r\n"},
      {"endless chunks",
       "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: "
       "chunked\r\n\r\n" +
           [] {
             std::string s;
             for (int i = 0; i < 40; ++i) s += "10000\r\n" + std::string(0x10000, 'x') + "\r\n";
             return s + "0\r\n\r\n";
           }()},
      {"gzip bomb header", raw_request("POST", "/v1/chat/completions", "not gzip",
                                       "application/json", "Content-Encoding: gzip\r\n")},
      {"multipart without boundary",
       raw_request("POST", "/v1/images/edits", "--XyZ\r\n\r\n", "multipart/form-data")},
      {"multipart truncated",
       raw_request("POST", "/v1/images/edits",
                   "--XyZ\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhat", mp)},
      {"multipart wrong boundary",
       raw_request(
           "POST", "/v1/images/edits",
           "--abc\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhat\r\n--abc--\r\n",
           mp)},
      {"multipart no disposition",
       raw_request("POST", "/v1/images/edits", "--XyZ\r\n\r\nhat\r\n--XyZ--\r\n", mp)},
      {"multipart unknown field",
       raw_request("POST", "/v1/images/edits",
                   "--XyZ\r\nContent-Disposition: form-data; name=\"evil\"\r\n\r\nx\r\n--XyZ--\r\n",
                   mp)},
      {"multipart bad image",
       raw_request(
           "POST", "/v1/images/edits",
           "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n" +
               png.substr(0, 30) +
               "\r\n--XyZ\r\nContent-Disposition: form-data; "
               "name=\"prompt\"\r\n\r\nhat\r\n--XyZ--\r\n",
           mp)},
      {"multipart to a json endpoint",
       raw_request("POST", "/v1/chat/completions",
                   "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--XyZ--\r\n",
                   mp)},
      {"json to the multipart endpoint",
       raw_request("POST", "/v1/images/edits", R"({"prompt":"x"})", "application/json")},
      {"get on a post route", raw_request("GET", "/v1/chat/completions", "", "")},
  };
  // A few thousand random byte strings after a valid request line.
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    std::string junk(size_t(rng() % 400), '\0');
    for (char& c : junk) c = char(rng() % 256);
    const char* path = i % 3 == 0   ? "/v1/chat/completions"
                       : i % 3 == 1 ? "/v1/images/generations"
                                    : "/v1/images/edits";
    cases.push_back({"random body " + std::to_string(i),
                     raw_request("POST", path, junk, i % 3 == 2 ? mp : "application/json")});
  }
  int answered = 0;
  for (const auto& [name, bytes] : cases) {
    test::RawHttp c(s.port());
    ASSERT_TRUE(c.connected()) << name;
    c.send(bytes);
    const std::string resp = c.read_until("\r\n\r\n", 20s);
    const int status = test::http_status(resp);
    // Either an HTTP error status, or the server dropped a connection it could not parse.
    if (status != 0) {
      ++answered;
      EXPECT_GE(status, 400) << name << ": " << resp.substr(0, 200);
      EXPECT_LT(status, 500) << name << ": " << resp.substr(0, 200);
    }
    ASSERT_TRUE(s.running()) << "the server died on: " << name << "\n" << s.log();
  }
  EXPECT_GT(answered, int(cases.size()) - 5);
  EXPECT_TRUE(healthy(s));
  EXPECT_EQ(s.stop(SIGTERM, 60s), 0);
}

}  // namespace
