// The server's request parsing and response shapes, without a model: base64, data: URLs, chat
// and image request bodies, the edit form, OpenAI error bodies and SSE framing.
#include <gtest/gtest.h>

#include "ovis/image_io.hpp"
#include "serve/api_error.hpp"
#include "serve/base64.hpp"
#include "serve/chat_wire.hpp"
#include "serve/data_url.hpp"
#include "serve/image_wire.hpp"
#include "serve/sse.hpp"

using namespace ovis;
using namespace ovis::serve;

namespace {

std::string png_data_url(int w = 8, int h = 6) {
  const std::vector<uint8_t> png = encode_image(Image::filled(w, h, 1, 2, 3), ImageFormat::Png);
  return "data:image/png;base64," + base64_encode(png);
}

// The ApiError a call throws (fails the test if it throws nothing or something else).
template <class F>
ApiError error_of(F&& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no ApiError thrown";
  return ApiError(0, "", "", "");
}

TEST(Base64, RoundTripsAndRefusesBrokenInput) {
  for (size_t n = 0; n < 20; ++n) {
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = uint8_t(i * 37 + 11);
    const std::string enc = base64_encode(bytes);
    EXPECT_EQ(enc.size() % 4, 0u);
    EXPECT_EQ(base64_decode(enc), bytes) << enc;
  }
  EXPECT_EQ(base64_decode("aGVsbG8="), std::vector<uint8_t>({'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ(base64_decode("aGVs\nbG8"), std::vector<uint8_t>({'h', 'e', 'l', 'l', 'o'}));
  for (const char* bad : {"a", "aGVsbG8==", "aG=Vs", "aGVsbG9=", "aGV$", "====", "aGVsbG8=x"})
    EXPECT_FALSE(base64_decode(bad)) << bad;
  EXPECT_FALSE(base64_decode("aGVsbG8=", 4));  // 5 bytes > max
}

TEST(DataUrl, ParsesBase64ImagesAndRefusesEverythingElse) {
  const DataUrl d = parse_data_url(png_data_url(), "p", 1 << 20);
  EXPECT_EQ(d.media_type, "image/png");
  int64_t budget = 1000;
  const Image img = decode_request_image(d.bytes.data(), d.bytes.size(), "p", budget);
  EXPECT_EQ(img.width, 8);
  EXPECT_EQ(budget, 1000 - 48);
  EXPECT_EQ(parse_data_url("DATA:Image/JPEG;name=x.jpg;BASE64,aGVsbG8=", "p", 64).media_type,
            "image/jpeg");

  EXPECT_EQ(error_of([] { parse_data_url("https://example.com/cat.png", "img", 64); }).code(),
            "remote_url_not_allowed");
  EXPECT_EQ(error_of([] { parse_data_url("  http://127.0.0.1/x", "img", 64); }).param(), "img");
  EXPECT_EQ(error_of([] { parse_data_url("file:///etc/passwd", "img", 64); }).status(), 400);
  EXPECT_EQ(error_of([] { parse_data_url("data:image/png,rawbytes", "img", 64); }).status(), 400);
  EXPECT_EQ(error_of([] { parse_data_url("data:text/html;base64,aGk=", "img", 64); }).status(),
            400);
  EXPECT_EQ(error_of([] { parse_data_url("data:image/png;base64,a$b=", "img", 64); }).code(),
            "invalid_base64");
  EXPECT_EQ(error_of([] { parse_data_url("data:image/png;base64", "img", 64); }).status(), 400);
  // Valid base64 that is not an image, and an image over the pixel budget.
  const std::vector<uint8_t> junk = {'n', 'o', 'p', 'e'};
  budget = 1000;
  EXPECT_EQ(error_of([&] { decode_request_image(junk.data(), junk.size(), "x", budget); }).code(),
            "invalid_image");
  budget = 47;
  EXPECT_EQ(
      error_of([&] { decode_request_image(d.bytes.data(), d.bytes.size(), "x", budget); }).status(),
      400);
}

TEST(ChatWire, ParsesAnOpenAIRequest) {
  Limits limits;
  const std::string body = R"({
    "model": "whatever", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
    "seed": 12, "stop": ["\n\n", "END"], "stream": true, "stream_options": {"include_usage": true},
    "tools": [], "logprobs": false, "presence_penalty": 0, "user": "someone",
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [{"type": "image_url", "image_url": {"url": ")" +
                           png_data_url() + R"("}},
                                  {"type": "text", "text": "What is it?"}]},
      {"role": "assistant", "content": "A square."},
      {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
      {"role": "user", "content": "Colour?"}]})";
  const ChatCompletionRequest r = parse_chat_completion(body, limits);
  EXPECT_EQ(r.chat.max_new_tokens, 7);
  EXPECT_FLOAT_EQ(r.chat.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.chat.sampling.top_p, 0.9f);
  EXPECT_EQ(r.chat.sampling.top_k, 40);
  EXPECT_EQ(r.seed, 12u);
  EXPECT_EQ(r.chat.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  ASSERT_EQ(r.chat.messages.size(), 5u);
  EXPECT_EQ(r.chat.messages[0].role, ChatRole::System);
  EXPECT_EQ(r.chat.messages[3].role, ChatRole::System);
  ASSERT_EQ(r.chat.messages[1].content.size(), 2u);
  EXPECT_TRUE(r.chat.messages[1].content[0].is_image());
  EXPECT_EQ(r.chat.messages[1].content[0].image.width, 8);
  EXPECT_EQ(r.chat.messages[1].content[1].text, "What is it?");

  const ChatCompletionRequest d =
      parse_chat_completion(R"({"messages":[{"role":"user","content":"hi"}]})", limits);
  EXPECT_EQ(d.chat.max_new_tokens, limits.default_max_tokens);
  EXPECT_EQ(d.chat.sampling.temperature, 0.0f);
  EXPECT_FALSE(d.stream);
  EXPECT_FALSE(d.seed);
}

TEST(ChatWire, RefusesMalformedUnsupportedAndOverLimitRequests) {
  Limits limits;
  limits.max_tokens = 100;
  limits.max_images = 1;
  auto param_of = [&](const std::string& body) {
    return error_of([&] { parse_chat_completion(body, limits); }).param();
  };
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  EXPECT_EQ(param_of("{"), "");
  EXPECT_EQ(param_of("[1,2]"), "");
  EXPECT_EQ(param_of("{}"), "messages");
  EXPECT_EQ(param_of(R"({"messages":[]})"), "messages");
  EXPECT_EQ(param_of(R"({"messages":"hi"})"), "messages");
  EXPECT_EQ(param_of(R"({"messages":[5]})"), "messages[0]");
  EXPECT_EQ(param_of(R"({"messages":[{"content":"x"}]})"), "messages[0].role");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"tool","content":"x"}]})"), "messages[0].role");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user"}]})"), "messages[0].content");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":7}]})"), "messages[0].content");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":[{"type":"audio"}]}]})"),
            "messages[0].content[0].type");
  EXPECT_EQ(
      param_of(
          R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://a/b.png"}}]}]})"),
      "messages[0].content[0].image_url.url");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})"),
            "messages[0].content[0].image_url");
  EXPECT_EQ(param_of(R"({"messages":[{"role":"assistant","content":"x"}]})"), "messages");
  EXPECT_EQ(param_of("{" + user + R"(,"max_tokens":101})"), "max_tokens");
  EXPECT_EQ(param_of("{" + user + R"(,"max_tokens":0})"), "max_tokens");
  EXPECT_EQ(param_of("{" + user + R"(,"max_tokens":"5"})"), "max_tokens");
  EXPECT_EQ(param_of("{" + user + R"(,"max_tokens":2.5})"), "max_tokens");
  EXPECT_EQ(param_of("{" + user + R"(,"max_tokens":1e300})"), "max_tokens");
  EXPECT_EQ(param_of("{" + user + R"(,"temperature":3})"), "temperature");
  EXPECT_EQ(param_of("{" + user + R"(,"top_p":0})"), "top_p");
  EXPECT_EQ(param_of("{" + user + R"(,"n":2})"), "n");
  EXPECT_EQ(param_of("{" + user + R"(,"stream":"yes"})"), "stream");
  EXPECT_EQ(param_of("{" + user + R"(,"stop":[1]})"), "stop");
  EXPECT_EQ(param_of("{" + user + R"(,"stop":["a","b","c","d","e"]})"), "stop");
  EXPECT_EQ(param_of("{" + user + R"(,"tools":[{"type":"function"}]})"), "tools");
  EXPECT_EQ(param_of("{" + user + R"(,"logprobs":true})"), "logprobs");
  EXPECT_EQ(param_of("{" + user + R"(,"response_format":{"type":"json_object"}})"),
            "response_format");
  EXPECT_EQ(param_of("{" + user + R"(,"frequency_penalty":0.5})"), "frequency_penalty");
  const std::string two_images =
      R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":")" +
      png_data_url() + R"("}},{"type":"image_url","image_url":")" + png_data_url() + R"("}]}]})";
  EXPECT_EQ(error_of([&] { parse_chat_completion(two_images, limits); }).code(), "too_many_images");
  limits.max_images = 8;
  limits.max_pixels = 60;  // two 8x6 images = 96 pixels
  EXPECT_EQ(error_of([&] { parse_chat_completion(two_images, limits); }).code(), "invalid_image");
  // Invalid UTF-8 inside a JSON string is a parse error, not a crash.
  EXPECT_EQ(error_of([&] {
              parse_chat_completion("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}",
                                    limits);
            }).code(),
            "invalid_json");
}

TEST(ChatWire, ResponseShapes) {
  AskResult r;
  r.text = "A cat.";
  r.tokens = {1, 2, 3};
  r.prompt_tokens = 10;
  r.finish_reason = FinishReason::Length;
  const Json c = chat_completion_json("chatcmpl-1", 5, "m", r);
  EXPECT_EQ(c["object"], "chat.completion");
  EXPECT_EQ(c["choices"][0]["message"]["content"], "A cat.");
  EXPECT_EQ(c["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"],
            Json({{"prompt_tokens", 10}, {"completion_tokens", 3}, {"total_tokens", 13}}));
  const Json k = chat_chunk_json("chatcmpl-1", 5, "m", {{"content", "x"}}, nullptr);
  EXPECT_EQ(k["object"], "chat.completion.chunk");
  EXPECT_TRUE(k["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(chat_usage_chunk_json("i", 5, "m", r)["choices"], Json::array());
}

TEST(ImageWire, ParsesGenerationRequests) {
  Limits limits;
  ImageJobRequest r = parse_generation_request(
      R"({"prompt":"a cat","n":2,"size":"512x256","steps":20,"cfg_scale":4.5,"seed":9,
          "response_format":"b64_json","output_format":"jpeg","output_compression":80,
          "stream":true,"quality":"high","model":"x"})",
      limits);
  EXPECT_FALSE(r.edit);
  EXPECT_EQ(r.prompt, "a cat");
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.width, 512);
  EXPECT_EQ(r.height, 256);
  EXPECT_EQ(r.steps, 20);
  EXPECT_FLOAT_EQ(r.cfg_scale, 4.5f);
  EXPECT_EQ(r.seed, 9u);
  EXPECT_EQ(r.format, ImageFormat::Jpeg);
  EXPECT_EQ(r.jpeg_quality, 80);
  EXPECT_TRUE(r.stream);
  r = parse_generation_request(R"({"prompt":"p"})", limits);
  EXPECT_EQ(r.width, 1024);
  EXPECT_EQ(r.steps, 50);
  EXPECT_FLOAT_EQ(r.cfg_scale, 5.0f);
  EXPECT_FALSE(r.seed);
  EXPECT_EQ(r.format, ImageFormat::Png);

  limits.max_n = 2;
  limits.max_steps = 30;
  limits.max_side = 512;
  auto param_of = [&](const std::string& body) {
    return error_of([&] { parse_generation_request(body, limits); }).param();
  };
  EXPECT_EQ(param_of(R"({})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt":""})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt":3})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt":"p","n":3})"), "n");
  EXPECT_EQ(param_of(R"({"prompt":"p","steps":31})"), "steps");
  EXPECT_EQ(param_of(R"({"prompt":"p","size":"1024x1024"})"), "size");
  EXPECT_EQ(param_of(R"({"prompt":"p","size":"8x8"})"), "size");
  EXPECT_EQ(param_of(R"({"prompt":"p","size":"512 x 512"})"), "size");
  EXPECT_EQ(param_of(R"({"prompt":"p","size":"x"})"), "size");
  EXPECT_EQ(param_of(R"({"prompt":"p","response_format":"url"})"), "response_format");
  EXPECT_EQ(param_of(R"({"prompt":"p","output_format":"webp"})"), "output_format");
  EXPECT_EQ(param_of(R"({"prompt":"p","cfg_scale":"high"})"), "cfg_scale");
  EXPECT_EQ(param_of(R"({"prompt":"p","negative_prompt":"dogs"})"), "negative_prompt");
}

TEST(ImageWire, ParsesTheEditForm) {
  Limits limits;
  const std::vector<uint8_t> png = encode_image(Image::filled(40, 24, 5, 5, 5), ImageFormat::Png);
  FormFields f;
  f.emplace("image", FormField{std::string(png.begin(), png.end()), "in.png", "image/png"});
  f.emplace("prompt", FormField{"add a hat", "", ""});
  f.emplace("steps", FormField{"12", "", ""});
  f.emplace("img_cfg_scale", FormField{"1.25", "", ""});
  f.emplace("seed", FormField{"77", "", ""});
  f.emplace("stream", FormField{"true", "", ""});
  f.emplace("size", FormField{"auto", "", ""});
  ImageJobRequest r = parse_edit_form(f, limits);
  EXPECT_TRUE(r.edit);
  EXPECT_EQ(r.input.width, 40);
  EXPECT_EQ(r.prompt, "add a hat");
  EXPECT_EQ(r.steps, 12);
  EXPECT_FLOAT_EQ(r.cfg_scale, 6.0f);
  EXPECT_FLOAT_EQ(r.img_cfg_scale, 1.25f);
  EXPECT_EQ(r.seed, 77u);
  EXPECT_TRUE(r.stream);

  auto with = [&](const std::string& name, FormField v) {
    FormFields g = f;
    g.erase(name);
    if (!v.content.empty() || !v.filename.empty()) g.emplace(name, v);
    return g;
  };
  auto param_of = [&](const FormFields& g) {
    return error_of([&] { parse_edit_form(g, limits); }).param();
  };
  EXPECT_EQ(param_of(with("image", {})), "image");
  EXPECT_EQ(param_of(with("image", {"not an image", "x.png", ""})), "image");
  EXPECT_EQ(param_of(with("prompt", {})), "prompt");
  EXPECT_EQ(param_of(with("steps", {"many", "", ""})), "steps");
  EXPECT_EQ(param_of(with("steps", {"1000", "", ""})), "steps");
  EXPECT_EQ(param_of(with("size", {"512x512", "", ""})), "size");
  EXPECT_EQ(param_of(with("stream", {"maybe", "", ""})), "stream");
  EXPECT_EQ(param_of(with("prompt", {"p", "prompt.txt", ""})), "prompt");
  FormFields g = f;
  g.emplace("mask", FormField{"x", "m.png", ""});
  EXPECT_EQ(param_of(g), "mask");
  g = f;
  g.emplace("image[]", f.find("image")->second);
  EXPECT_EQ(error_of([&] { parse_edit_form(g, limits); }).code(), "too_many_images");
  g = f;
  g.emplace("colour", FormField{"red", "", ""});
  EXPECT_EQ(param_of(g), "colour");
  g = f;
  g.emplace("steps", FormField{"3", "", ""});
  EXPECT_EQ(param_of(g), "steps");  // given twice
  limits.max_pixels = 40 * 24 - 1;
  EXPECT_EQ(param_of(f), "image");
}

TEST(ImageWire, ResponseShape) {
  ProducedImage img;
  img.bytes = {1, 2, 3};
  img.width = 64;
  img.height = 32;
  img.seed = 5;
  img.parameters = "p";
  const Json j = images_response_json(7, ImageFormat::Png, {img});
  EXPECT_EQ(j["created"], 7);
  EXPECT_EQ(j["data"][0]["b64_json"], "AQID");
  EXPECT_EQ(j["data"][0]["seed"], 5);
  EXPECT_EQ(j["data"][0]["parameters"], "p");
  EXPECT_EQ(j["size"], "64x32");
  EXPECT_EQ(j["output_format"], "png");
}

TEST(ApiErrors, UseTheOpenAIShape) {
  const Json e = Json::parse(invalid_request("max_tokens", "too big").body());
  EXPECT_EQ(e, Json::parse(R"({"error":{"message":"too big","type":"invalid_request_error",
                                         "code":"invalid_value","param":"max_tokens"}})"));
  const Json n = Json::parse(error_body(404, "no such endpoint"));
  EXPECT_EQ(n["error"]["type"], "not_found_error");
  EXPECT_TRUE(n["error"]["param"].is_null());
  EXPECT_EQ(Json::parse(error_body(429, "full"))["error"]["type"], "rate_limit_error");
  // Invalid UTF-8 quoted into a message is replaced, never thrown.
  EXPECT_NO_THROW(Json::parse(invalid_request("x", "bad \xff byte").body()));
}

TEST(Sse, FramesEventsLikeOpenAI) {
  EXPECT_EQ(sse_event(Json{{"a", "line1\nline2"}}), "data: {\"a\":\"line1\\nline2\"}\n\n");
  EXPECT_EQ(sse_event(Json{{"a", 1}}, "progress"), "event: progress\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  EXPECT_EQ(sse_comment("x"), ": x\n\n");
}

}  // namespace
