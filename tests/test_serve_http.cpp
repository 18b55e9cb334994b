// `ovis serve` end to end on the tiny fixture over loopback: every endpoint in the OpenAI wire
// format, the answer of `ovis ask` reproduced over HTTP, streaming, authentication, limits, the
// bounded queue (429), cancellation by disconnect, chats between denoising steps, and a clean
// stop on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "ovis/image_io.hpp"
#include "serve/base64.hpp"
#include "support/golden.hpp"
#include "support/raw_http.hpp"
#include "support/serve_process.hpp"

using namespace ovis;
using namespace std::chrono_literals;
using Json = nlohmann::json;

namespace {

std::string cat_data_url() {
  std::ifstream in(test::fixture_path("inputs/cat.png"), std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  return "data:image/png;base64," + serve::base64_encode(bytes);
}

std::string small_png(int w, int h) {
  const std::vector<uint8_t> png = encode_image(Image::filled(w, h, 200, 60, 30), ImageFormat::Png);
  return std::string(png.begin(), png.end());
}

Json body_json(const httplib::Result& r) {
  return r ? Json::parse(r->body, nullptr, false) : Json();
}

// The data payloads of an SSE body, in order ("[DONE]" included).
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  size_t pos = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    out.push_back(body.substr(pos + 6, end - pos - 6));
    pos = end;
  }
  return out;
}

std::string run_cli(const std::string& args) {
  const std::string cmd = std::string(OVIS_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

std::string raw_post(const std::string& path, const std::string& body,
                     const std::string& extra = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Polls /health until the model is idle with an empty queue.
bool wait_idle(const test::ServeProcess& s, std::chrono::seconds limit) {
  auto cli = s.client();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    Json h = body_json(cli.Get("/health"));
    if (h.is_object() && h["busy"] == false && h["queued"] == 0) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

bool wait_health(const test::ServeProcess& s, std::chrono::seconds limit,
                 const std::function<bool(const Json&)>& pred) {
  auto cli = s.client();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const Json h = body_json(cli.Get("/health"));
    if (h.is_object() && pred(h)) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}
bool wait_busy(const test::ServeProcess& s, std::chrono::seconds limit) {
  return wait_health(s, limit, [](const Json& h) { return h["busy"] == true; });
}
bool wait_queued(const test::ServeProcess& s, int n, std::chrono::seconds limit) {
  return wait_health(s, limit, [n](const Json& h) { return h["queued"] == n; });
}

TEST(ServeHttp, HealthModelsUiAndErrorsInTheOpenAIShape) {
  test::ServeProcess s;
  auto cli = s.client();
  auto h = cli.Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
  EXPECT_EQ(body_json(h)["status"], "ok");
  auto m = cli.Get("/v1/models");
  EXPECT_EQ(body_json(m)["data"][0]["id"], "tiny-ovis-u1");
  EXPECT_EQ(cli.Get("/v1/models/tiny-ovis-u1")->status, 200);
  EXPECT_EQ(body_json(cli.Get("/v1/models/gpt-4"))["error"]["code"], "model_not_found");
  auto ui = cli.Get("/");
  EXPECT_EQ(ui->status, 200);
  EXPECT_NE(ui->body.find("<title>ovis.cpp</title>"), std::string::npos);
  EXPECT_NE(ui->get_header_value("Content-Security-Policy").find("connect-src 'self'"),
            std::string::npos);
  auto nf = cli.Get("/v2/nothing");
  EXPECT_EQ(nf->status, 404);
  EXPECT_EQ(body_json(nf)["error"]["type"], "not_found_error");
  // One log line per request: method, path, status, time.
  EXPECT_TRUE(s.wait_log("GET /v2/nothing 404", 10s)) << s.log();
}

TEST(ServeHttp, ChatAnswersExactlyLikeOvisAsk) {
  const std::string fixture = test::fixture_dir();
  const std::string cli_answer =
      run_cli("--precision f32 -t 1 -q ask -m " + fixture + " --image " +
              test::fixture_path("inputs/cat.png") + " -p \"What is it?\" -n 8");
  ASSERT_FALSE(cli_answer.empty());
  test::ServeProcess s({}, {"--precision", "f32", "-t", "1"});
  auto cli = s.client();
  const Json req = {{"model", "tiny-ovis-u1"},
                    {"max_tokens", 8},
                    {"messages",
                     {{{"role", "user"},
                       {"content",
                        {{{"type", "image_url"}, {"image_url", {{"url", cat_data_url()}}}},
                         {{"type", "text"}, {"text", "What is it?"}}}}}}}};
  auto r = cli.Post("/v1/chat/completions", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = body_json(r);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"].get<std::string>() + "\n", cli_answer);
  EXPECT_EQ(j["choices"][0]["message"]["content"],
            test::manifest_case("und_single")["greedy_text"]);
  EXPECT_EQ(j["usage"]["prompt_tokens"], test::manifest_case("und_single")["merged_len"]);
  EXPECT_EQ(j["usage"]["completion_tokens"], 8);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");

  // The same request streamed: the deltas add up to the same answer.
  Json sreq = req;
  sreq["stream"] = true;
  sreq["stream_options"] = {{"include_usage", true}};
  auto st = cli.Post("/v1/chat/completions", sreq.dump(), "application/json");
  ASSERT_EQ(st->status, 200);
  EXPECT_EQ(st->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> events = sse_data(st->body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string streamed;
  Json usage;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const Json e = Json::parse(events[i]);
    EXPECT_EQ(e["object"], "chat.completion.chunk");
    if (e.contains("usage")) usage = e["usage"];
    for (const Json& c : e["choices"])
      if (c["delta"].contains("content")) streamed += c["delta"]["content"].get<std::string>();
  }
  EXPECT_EQ(streamed, j["choices"][0]["message"]["content"]);
  EXPECT_EQ(usage, j["usage"]);
}

TEST(ServeHttp, MultiTurnChatWithStopStrings) {
  test::ServeProcess s;
  auto cli = s.client();
  Json req = {{"max_tokens", 6},
              {"messages",
               {{{"role", "system"}, {"content", "Be brief."}},
                {{"role", "user"}, {"content", "Hello"}},
                {{"role", "assistant"}, {"content", "Hi."}},
                {{"role", "user"}, {"content", "How are you?"}}}}};
  const Json full = body_json(cli.Post("/v1/chat/completions", req.dump(), "application/json"));
  const std::string text = full["choices"][0]["message"]["content"];
  ASSERT_GE(text.size(), 4u) << full;
  req["stop"] = text.substr(text.size() / 2, 2);
  const Json cut = body_json(cli.Post("/v1/chat/completions", req.dump(), "application/json"));
  EXPECT_EQ(cut["choices"][0]["message"]["content"], text.substr(0, text.find(req["stop"])));
  EXPECT_EQ(cut["choices"][0]["finish_reason"], "stop");
}

TEST(ServeHttp, GeneratesPngsWithTheParametersChunkAndJpegs) {
  test::ServeProcess s;
  auto cli = s.client();
  Json req = {
      {"prompt", "a red square"},     {"n", 2}, {"size", "32x48"}, {"steps", 1}, {"seed", 5},
      {"response_format", "b64_json"}};
  auto r = cli.Post("/v1/images/generations", req.dump(), "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = body_json(r);
  ASSERT_EQ(j["data"].size(), 2u);
  EXPECT_EQ(j["size"], "32x48");
  for (int i = 0; i < 2; ++i) {
    const Json& d = j["data"][i];
    EXPECT_EQ(d["seed"], 5 + i);
    const auto png = serve::base64_decode(d["b64_json"].get<std::string>());
    ASSERT_TRUE(png);
    const std::string path = ::testing::TempDir() + "/serve_gen.png";
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(png->data()), std::streamsize(png->size()));
    const Image img = read_image(path);
    EXPECT_EQ(img.width, 32);
    EXPECT_EQ(img.height, 48);
    // The same text chunk `ovis generate` writes.
    const std::string expected =
        "a red square\nSteps: 1, Sampler: Euler (flow matching), CFG "
        "scale: 5, Seed: " +
        std::to_string(5 + i) + ", Size: 32x48, Model: tiny-ovis-u1, Version: ovis.cpp 0.1.0";
    EXPECT_EQ(read_png_text(path), TextChunks({{"parameters", expected}}));
    EXPECT_EQ(d["parameters"], expected);
    std::remove(path.c_str());
  }
  req["n"] = 1;
  req["output_format"] = "jpeg";
  const Json jj = body_json(cli.Post("/v1/images/generations", req.dump(), "application/json"));
  const auto jpg = serve::base64_decode(jj["data"][0]["b64_json"].get<std::string>());
  ASSERT_TRUE(jpg && jpg->size() > 3);
  EXPECT_EQ((*jpg)[0], 0xFF);
  EXPECT_EQ(jj["output_format"], "jpeg");
}

TEST(ServeHttp, StreamsImageProgressWithEtaThenTheImage) {
  test::ServeProcess s;
  auto cli = s.client();
  const Json req = {{"prompt", "a cat"}, {"size", "32x32"}, {"steps", 3}, {"stream", true}};
  auto r = cli.Post("/v1/images/generations", req.dump(), "application/json");
  ASSERT_EQ(r->status, 200);
  const std::vector<std::string> events = sse_data(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  int denoise = 0;
  bool eta = false;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const Json e = Json::parse(events[i]);
    EXPECT_EQ(e["type"], "image_generation.progress");
    for (const char* k : {"stage", "step", "total", "elapsed", "eta"}) EXPECT_TRUE(e.contains(k));
    if (e["stage"] == "denoise") {
      ++denoise;
      eta = eta || e["eta"].is_number();
    }
  }
  EXPECT_EQ(denoise, 3);
  EXPECT_TRUE(eta);
  const Json done = Json::parse(events[events.size() - 2]);
  EXPECT_EQ(done["type"], "image_generation.completed");
  EXPECT_EQ(done["size"], "32x32");
  EXPECT_TRUE(serve::base64_decode(done["b64_json"].get<std::string>()));
}

TEST(ServeHttp, EditsAMultipartUpload) {
  test::ServeProcess s;
  auto cli = s.client();
  httplib::MultipartFormDataItems form = {
      {"image", small_png(96, 72), "in.png", "image/png"},
      {"prompt", "make it blue", "", ""},
      {"steps", "1", "", ""},
      {"seed", "3", "", ""},
      {"img_cfg_scale", "1.5", "", ""},
  };
  auto r = cli.Post("/v1/images/edits", form);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const Json j = body_json(r);
  EXPECT_EQ(j["size"], "96x64");  // smart_resize(factor 32) of 96x72
  EXPECT_NE(
      j["data"][0]["parameters"].get<std::string>().find("CFG scale: 6, Image CFG scale: 1.5"),
      std::string::npos);
  form.push_back({"mask", small_png(8, 8), "mask.png", "image/png"});
  auto bad = cli.Post("/v1/images/edits", form);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(body_json(bad)["error"]["param"], "mask");
  auto json_body = cli.Post("/v1/images/edits", "{}", "application/json");
  EXPECT_EQ(json_body->status, 415);
}

TEST(ServeHttp, ApiKeyGuardsTheApiButNotHealthOrTheUi) {
  test::ServeProcess s({"--api-key", "sekrit"});
  auto cli = s.client();
  auto none = cli.Get("/v1/models");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(body_json(none)["error"]["code"], "invalid_api_key");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  EXPECT_EQ(cli.Get("/v1/models", wrong)->status, 401);
  auto chat = cli.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})",
                       "application/json");
  EXPECT_EQ(chat->status, 401);
  httplib::Headers right = {{"Authorization", "Bearer sekrit"}};
  EXPECT_EQ(cli.Get("/v1/models", right)->status, 200);
  EXPECT_EQ(cli.Get("/health")->status, 200);
  EXPECT_EQ(cli.Get("/")->status, 200);
}

TEST(ServeHttp, LimitsAreAnsweredWith4xxNamingTheField) {
  test::ServeProcess s({"--max-body-mb", "1", "--max-megapixels", "0.001", "--max-tokens", "16",
                        "--max-n", "2", "--max-steps", "5", "--max-size", "64"});
  auto cli = s.client();
  auto post = [&](const std::string& path, const Json& body) {
    return cli.Post(path, body.dump(), "application/json");
  };
  const Json user = {{{"role", "user"}, {"content", "hi"}}};
  {
    // The server answers from the headers alone (a client still sending the body may see the
    // connection close first, so the body is not sent here).
    test::RawHttp big(s.port());
    big.send(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        "application/json\r\nContent-Length: " +
        std::to_string(2 << 20) + "\r\n\r\n{");
    const std::string resp = big.read_until("}}", 30s);
    EXPECT_EQ(test::http_status(resp), 413) << resp;
    EXPECT_NE(resp.find("\"code\":\"request_too_large\""), std::string::npos) << resp;
  }
  auto check = [&](const httplib::Result& r, int status, const std::string& param) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(body_json(r)["error"]["param"], param) << r->body;
  };
  check(post("/v1/chat/completions", {{"messages", user}, {"max_tokens", 17}}), 400, "max_tokens");
  check(post("/v1/images/generations", {{"prompt", "p"}, {"n", 3}}), 400, "n");
  check(post("/v1/images/generations", {{"prompt", "p"}, {"steps", 6}}), 400, "steps");
  check(post("/v1/images/generations", {{"prompt", "p"}, {"size", "128x32"}}), 400, "size");
  // 40x40 = 1600 decoded pixels > 1000 (a decompression bomb is refused the same way).
  const std::string png = small_png(40, 40);
  const Json img_msg = {
      {{"role", "user"},
       {"content",
        {{{"type", "image_url"},
          {"image_url",
           {{"url", "data:image/png;base64," +
                        serve::base64_encode(reinterpret_cast<const uint8_t*>(png.data()),
                                             png.size())}}}}}}}};
  auto px = post("/v1/chat/completions", {{"messages", img_msg}});
  check(px, 400, "messages[0].content[0].image_url.url");
  EXPECT_NE(body_json(px)["error"]["message"].get<std::string>().find("exceeds the limit"),
            std::string::npos);
  const Json remote = {
      {{"role", "user"},
       {"content",
        {{{"type", "image_url"}, {"image_url", {{"url", "http://127.0.0.1:1/x.png"}}}}}}}};
  auto rem = post("/v1/chat/completions", {{"messages", remote}});
  EXPECT_EQ(body_json(rem)["error"]["code"], "remote_url_not_allowed");
  // Cross-origin browser requests and foreign Host names (DNS rebinding) are refused.
  httplib::Headers origin = {{"Origin", "http://evil.example"}};
  EXPECT_EQ(
      cli.Post("/v1/chat/completions", origin, Json{{"messages", user}}.dump(), "application/json")
          ->status,
      403);
  test::RawHttp raw(s.port());
  raw.send("GET /v1/models HTTP/1.1\r\nHost: evil.example:8080\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(test::http_status(raw.read_until("\r\n\r\n", 10s)), 403);
}

TEST(ServeHttp, FullQueueAnswers429WithRetryAfter) {
  test::ServeProcess s({"--max-queue", "1", "--max-steps", "1000"});
  // A long streamed image occupies the model; a second job fills the queue.
  test::RawHttp first(s.port());
  first.send(raw_post("/v1/images/generations",
                      R"({"prompt":"p","size":"32x32","steps":1000,"stream":true})"));
  ASSERT_NE(first.read_until("\"stage\":\"denoise\"", 120s).find("\"stage\":\"denoise\""),
            std::string::npos);
  test::RawHttp second(s.port());
  second.send(raw_post("/v1/images/generations", R"({"prompt":"p","size":"32x32","steps":1})"));
  std::this_thread::sleep_for(500ms);
  auto cli = s.client();
  auto r = cli.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})",
                    "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(body_json(r)["error"]["type"], "rate_limit_error");
  EXPECT_GE(
      std::stoi(r->get_header_value("Retry-After", 0).empty() ? "0"
                                                              : r->get_header_value("Retry-After")),
      1);
  first.close();  // cancels the long job: the queued one runs and answers
  EXPECT_EQ(test::http_status(second.read_until("\r\n\r\n", 120s)), 200);
}

TEST(ServeHttp, DisconnectCancelsTheJobAndChatsRunBetweenDenoisingSteps) {
  test::ServeProcess s({"--max-steps", "1000"});
  test::RawHttp image(s.port());
  image.send(raw_post("/v1/images/generations",
                      R"({"prompt":"p","size":"32x32","steps":400,"stream":true})"));
  ASSERT_NE(image.read_until("\"stage\":\"denoise\"", 120s).find("denoise"), std::string::npos);
  // A chat sent now is answered while the image is still denoising.
  auto cli = s.client();
  auto r = cli.Post("/v1/chat/completions",
                    R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":2})",
                    "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::string more = image.read_until("\"step\":400", 1s);
  EXPECT_EQ(more.find("\"step\":400"), std::string::npos);  // far from done
  EXPECT_EQ(body_json(cli.Get("/health"))["busy"], true);
  // Hanging up cancels the image at its next step.
  image.close();
  EXPECT_TRUE(wait_idle(s, 60s));
  // A non-streamed request whose client leaves is cancelled too.
  test::RawHttp waiting(s.port());
  waiting.send(raw_post("/v1/images/generations", R"({"prompt":"p","size":"32x32","steps":400})"));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(body_json(cli.Get("/health"))["busy"], true);
  waiting.close();
  EXPECT_TRUE(wait_idle(s, 60s));
  EXPECT_TRUE(s.wait_log("POST /v1/images/generations 499", 10s)) << s.log();
}

TEST(ServeHttp, SigtermCancelsRunningJobsAndExitsZero) {
  test::ServeProcess s({"--max-steps", "1000"});
  test::RawHttp image(s.port());
  image.send(raw_post("/v1/images/generations",
                      R"({"prompt":"p","size":"32x32","steps":1000,"stream":true})"));
  ASSERT_NE(image.read_until("\"stage\":\"denoise\"", 120s).find("denoise"), std::string::npos);
  EXPECT_EQ(s.stop(SIGTERM, 60s), 0) << s.log();
  const std::string got = image.read_until("[DONE]", 10s);
  EXPECT_NE(got.find("shutting down"), std::string::npos);
  EXPECT_NE(s.log().find("SIGTERM: stopping"), std::string::npos);
}

TEST(ServeHttp, SigintRefusesWaitingJobsCancelsTheRunningOneAndExitsZero) {
  test::ServeProcess s({"--max-steps", "1000"});
  // One non-streamed image runs, a second one waits in the queue.
  test::RawHttp running(s.port()), waiting(s.port());
  running.send(raw_post("/v1/images/generations", R"({"prompt":"p","size":"32x32","steps":1000})"));
  ASSERT_TRUE(wait_busy(s, 120s));
  waiting.send(raw_post("/v1/images/generations", R"({"prompt":"p","size":"32x32","steps":1})"));
  ASSERT_TRUE(wait_queued(s, 1, 60s));
  EXPECT_EQ(s.stop(SIGINT, 60s), 0) << s.log();
  for (test::RawHttp* c : {&running, &waiting}) {
    const std::string got = c->read_until("}}", 10s);
    EXPECT_EQ(test::http_status(got), 503) << got;
    EXPECT_NE(got.find("shutting down"), std::string::npos) << got;
  }
  EXPECT_NE(s.log().find("SIGINT: stopping"), std::string::npos) << s.log();
  EXPECT_NE(s.log().find("ovis serve: stopped"), std::string::npos) << s.log();
}

// A throwaway Hugging Face cache holding the fixture as models--<org>--<name> (refs/main ->
// snapshots/<commit>, the snapshot a link to the fixture folder), set as $HF_HUB_CACHE.
class HfCacheEnv {
 public:
  HfCacheEnv(const std::string& org, const std::string& name)
      : root_(std::filesystem::path(::testing::TempDir()) /
              ("serve_hf_cache_" + std::to_string(::getpid()))) {
    const std::string commit(40, 'a');
    const std::filesystem::path repo = root_ / ("models--" + org + "--" + name);
    std::filesystem::create_directories(repo / "snapshots");
    std::filesystem::create_directories(repo / "refs");
    std::filesystem::create_directory_symlink(std::filesystem::absolute(test::fixture_dir()),
                                              repo / "snapshots" / commit);
    std::ofstream(repo / "refs" / "main") << commit;
    if (const char* old = std::getenv("HF_HUB_CACHE")) old_ = old;
    ::setenv("HF_HUB_CACHE", root_.c_str(), 1);
  }
  ~HfCacheEnv() {
    if (old_)
      ::setenv("HF_HUB_CACHE", old_->c_str(), 1);
    else
      ::unsetenv("HF_HUB_CACHE");
    std::filesystem::remove_all(root_);
  }

 private:
  std::filesystem::path root_;
  std::optional<std::string> old_;
};

TEST(ServeHttp, ModelGivenByRepoIdIsFoundInTheHfCacheAndReportedByName) {
  HfCacheEnv cache("test-org", "tiny-served");
  {
    test::ServeProcess s({"-m", "test-org/tiny-served"});
    ASSERT_GT(s.port(), 0) << s.log();
    auto cli = s.client();
    const Json models = body_json(cli.Get("/v1/models"));
    EXPECT_EQ(models["data"][0]["id"], "tiny-served") << models;
    EXPECT_EQ(body_json(cli.Get("/health"))["model"], "tiny-served");
    const Json gen = body_json(
        cli.Post("/v1/images/generations",
                 Json{{"prompt", "p"}, {"size", "32x32"}, {"steps", 1}, {"seed", 1}}.dump(),
                 "application/json"));
    EXPECT_NE(gen["data"][0]["parameters"].get<std::string>().find(", Model: tiny-served,"),
              std::string::npos)
        << gen;
  }
  {
    // --alias renames the model for the API; images still record the model's own name.
    test::ServeProcess s({"-m", "test-org/tiny-served", "--alias", "gpt-image-1"});
    auto cli = s.client();
    EXPECT_EQ(body_json(cli.Get("/v1/models"))["data"][0]["id"], "gpt-image-1");
    const Json gen = body_json(
        cli.Post("/v1/images/generations",
                 Json{{"prompt", "p"}, {"size", "32x32"}, {"steps", 1}, {"seed", 1}}.dump(),
                 "application/json"));
    EXPECT_NE(gen["data"][0]["parameters"].get<std::string>().find(", Model: tiny-served,"),
              std::string::npos)
        << gen;
  }
  // A repo id that is not in the cache: one error line naming `ovis pull`, exit non-zero.
  const std::string cmd =
      std::string(OVIS_BINARY) + " serve -m test-org/absent --port 0 2>&1; echo \"exit=$?\"";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  EXPECT_NE(out.find("error: -m test-org/absent"), std::string::npos) << out;
  EXPECT_NE(out.find("ovis pull test-org/absent"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=1"), std::string::npos) << out;
}

TEST(ServeHttp, SampledChatsRepeatWithTheSameSeedAndTakeSeveralImages) {
  test::ServeProcess s;
  auto cli = s.client();
  const Json req = {
      {"max_tokens", 6}, {"temperature", 1.0},
      {"top_p", 0.95},   {"top_k", 50},
      {"seed", 1234},    {"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}};
  const Json a = body_json(cli.Post("/v1/chat/completions", req.dump(), "application/json"));
  const Json b = body_json(cli.Post("/v1/chat/completions", req.dump(), "application/json"));
  ASSERT_TRUE(a["choices"][0]["message"]["content"].is_string()) << a;
  EXPECT_EQ(a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]);
  EXPECT_EQ(a["usage"]["completion_tokens"], 6);
  // Two images in one user message: both are encoded into the prompt.
  const Json one = {{"type", "image_url"}, {"image_url", {{"url", cat_data_url()}}}};
  const Json text = {{"type", "text"}, {"text", "Compare them."}};
  const Json single = body_json(cli.Post(
      "/v1/chat/completions",
      Json{{"max_tokens", 2}, {"messages", {{{"role", "user"}, {"content", {one, text}}}}}}.dump(),
      "application/json"));
  const Json pair = body_json(cli.Post(
      "/v1/chat/completions",
      Json{{"max_tokens", 2}, {"messages", {{{"role", "user"}, {"content", {one, one, text}}}}}}
          .dump(),
      "application/json"));
  ASSERT_TRUE(single["usage"]["prompt_tokens"].is_number()) << single;
  ASSERT_TRUE(pair["usage"]["prompt_tokens"].is_number()) << pair;
  EXPECT_GT(pair["usage"]["prompt_tokens"].get<int>(), single["usage"]["prompt_tokens"].get<int>());
}

}  // namespace
