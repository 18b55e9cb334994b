#include "serve/chat_wire.hpp"

#include "serve/api_error.hpp"
#include "serve/data_url.hpp"

namespace ovis::serve {

namespace {

ChatRole parse_role(const Json& m, const std::string& param) {
  auto role = get_string(m, "role");
  if (!role) throw invalid_request(param + ".role", param + ".role is required", "missing_field");
  if (*role == "system" || *role == "developer") return ChatRole::System;
  if (*role == "user") return ChatRole::User;
  if (*role == "assistant") return ChatRole::Assistant;
  throw invalid_request(param + ".role",
                        param +
                            ".role must be system, developer, user or assistant (tool and "
                            "function messages are not supported)");
}

ChatPart parse_image_part(const Json& part, const std::string& param, int64_t& pixel_budget,
                          size_t max_bytes) {
  auto it = part.find("image_url");
  if (it == part.end())
    throw invalid_request(param + ".image_url", param + ".image_url is required", "missing_field");
  std::string url;
  if (it->is_string()) {
    url = it->get<std::string>();
  } else if (it->is_object()) {
    auto u = get_string(*it, "url");
    if (!u)
      throw invalid_request(param + ".image_url.url", param + ".image_url.url is required",
                            "missing_field");
    url = std::move(*u);
  } else {
    throw invalid_request(param + ".image_url",
                          param + ".image_url must be an object {\"url\": ...}", "invalid_type");
  }
  DataUrl d = parse_data_url(url, param + ".image_url.url", max_bytes);
  ChatPart p;
  p.image =
      decode_request_image(d.bytes.data(), d.bytes.size(), param + ".image_url.url", pixel_budget);
  return p;
}

std::vector<ChatPart> parse_content(const Json& m, const std::string& param, const Limits& limits,
                                    int64_t& pixel_budget, int& images) {
  auto it = m.find("content");
  if (it == m.end() || it->is_null())
    throw invalid_request(param + ".content", param + ".content is required", "missing_field");
  std::vector<ChatPart> parts;
  if (it->is_string()) {
    parts.push_back(ChatPart{it->get<std::string>(), {}});
    return parts;
  }
  if (!it->is_array())
    throw invalid_request(param + ".content",
                          param + ".content must be a string or an array of content parts",
                          "invalid_type");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& part = (*it)[i];
    const std::string pp = param + ".content[" + std::to_string(i) + "]";
    if (!part.is_object()) throw invalid_request(pp, pp + " must be an object", "invalid_type");
    auto type = get_string(part, "type");
    if (!type) throw invalid_request(pp + ".type", pp + ".type is required", "missing_field");
    if (*type == "text") {
      auto text = get_string(part, "text");
      if (!text) throw invalid_request(pp + ".text", pp + ".text is required", "missing_field");
      parts.push_back(ChatPart{std::move(*text), {}});
    } else if (*type == "image_url") {
      if (++images > limits.max_images)
        throw invalid_request(
            pp, "at most " + std::to_string(limits.max_images) + " images per request",
            "too_many_images");
      parts.push_back(parse_image_part(part, pp, pixel_budget, limits.max_body_bytes));
    } else {
      throw invalid_request(
          pp + ".type",
          pp + ".type '" + type->substr(0, 64) + "' is not supported (use text or image_url)",
          "unsupported_content_type");
    }
  }
  return parts;
}

std::vector<std::string> parse_stop(const Json& body) {
  auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return {};
  std::vector<std::string> stop;
  if (it->is_string()) {
    stop.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    if (it->size() > 4) throw invalid_request("stop", "stop may hold at most 4 strings");
    for (const Json& s : *it) {
      if (!s.is_string())
        throw invalid_request("stop", "stop must be a string or an array of strings",
                              "invalid_type");
      stop.push_back(s.get<std::string>());
    }
  } else {
    throw invalid_request("stop", "stop must be a string or an array of strings", "invalid_type");
  }
  for (const std::string& s : stop)
    if (s.empty() || s.size() > 1024)
      throw invalid_request("stop", "stop strings must hold 1 to 1024 bytes");
  return stop;
}

}  // namespace

ChatCompletionRequest parse_chat_completion(std::string_view body_text, const Limits& limits) {
  const Json body = parse_json_object(body_text);
  ChatCompletionRequest out;
  get_string(body, "model");  // any model name is served by the one resident model
  if (auto n = get_int(body, "n", 1, 1)) (void)n;
  refuse_unless_default(body, "tools", "this model has no tool calling");
  refuse_unless_default(body, "functions", "this model has no tool calling");
  refuse_unless_default(body, "tool_choice", "this model has no tool calling");
  refuse_unless_default(body, "function_call", "this model has no tool calling");
  refuse_unless_default(body, "logprobs", "log probabilities are not returned");
  refuse_unless_default(body, "top_logprobs", "log probabilities are not returned");
  refuse_unless_default(body, "logit_bias", "logit bias is not applied");
  refuse_unless_default(body, "presence_penalty", "penalties are not applied");
  refuse_unless_default(body, "frequency_penalty", "penalties are not applied");
  refuse_unless_default(body, "audio", "the model answers in text");
  if (auto rf = body.find("response_format"); rf != body.end() && !rf->is_null()) {
    if (!rf->is_object() || rf->value("type", Json()) != "text")
      throw invalid_request("response_format",
                            "response_format is not supported: only {\"type\": \"text\"}",
                            "unsupported_parameter");
  }
  if (auto mod = body.find("modalities"); mod != body.end() && !mod->is_null()) {
    if (!mod->is_array() || *mod != Json::array({"text"}))
      throw invalid_request("modalities", "modalities must be [\"text\"]", "unsupported_parameter");
  }

  auto max_tokens = get_int(body, "max_completion_tokens", 1, limits.max_tokens);
  if (!max_tokens) max_tokens = get_int(body, "max_tokens", 1, limits.max_tokens);
  out.chat.max_new_tokens =
      int(max_tokens.value_or(std::min(limits.default_max_tokens, limits.max_tokens)));
  out.chat.sampling.temperature = float(get_number(body, "temperature", 0.0, 2.0).value_or(0.0));
  out.chat.sampling.top_p = float(get_number(body, "top_p", 0.0, 1.0).value_or(1.0));
  if (out.chat.sampling.top_p <= 0.0f)
    throw invalid_request("top_p", "top_p must be greater than 0");
  out.chat.sampling.top_k = int(get_int(body, "top_k", 0, 1 << 20).value_or(0));
  if (auto seed = get_int(body, "seed", INT64_MIN, INT64_MAX)) out.seed = uint64_t(*seed);
  out.chat.stop = parse_stop(body);
  out.stream = get_bool(body, "stream").value_or(false);
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object())
      throw invalid_request("stream_options", "stream_options must be an object", "invalid_type");
    out.include_usage = get_bool(*so, "include_usage").value_or(false);
  }

  auto msgs = body.find("messages");
  if (msgs == body.end() || msgs->is_null())
    throw invalid_request("messages", "messages is required", "missing_field");
  if (!msgs->is_array() || msgs->empty())
    throw invalid_request("messages", "messages must be a non-empty array", "invalid_type");
  int64_t pixel_budget = limits.max_pixels;
  int images = 0;
  for (size_t i = 0; i < msgs->size(); ++i) {
    const Json& m = (*msgs)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw invalid_request(param, param + " must be an object", "invalid_type");
    ChatMessage msg;
    msg.role = parse_role(m, param);
    msg.content = parse_content(m, param, limits, pixel_budget, images);
    out.chat.messages.push_back(std::move(msg));
  }
  // The conversation rules of the model's chat format (roles, image placement).
  try {
    format_chat_prompt(out.chat.messages);
  } catch (const Error& e) {
    std::string what = e.what();
    throw invalid_request("messages", what.rfind("message ", 0) == 0 ? "messages: " + what : what);
  }
  return out;
}

const char* finish_reason_name(FinishReason r) {
  return r == FinishReason::Length ? "length" : "stop";
}

Json usage_json(const AskResult& r) {
  const int completion = int(r.tokens.size());
  return {{"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", completion},
          {"total_tokens", r.prompt_tokens + completion}};
}

Json chat_completion_json(const std::string& id, int64_t created, const std::string& model,
                          const AskResult& r) {
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", Json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", r.text}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", finish_reason_name(r.finish_reason)}}})},
          {"usage", usage_json(r)}};
}

Json chat_chunk_json(const std::string& id, int64_t created, const std::string& model,
                     const Json& delta, const char* finish_reason) {
  Json choice = {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish_reason ? Json(finish_reason) : Json(nullptr);
  return {{"id", id},
          {"object", "chat.completion.chunk"},
          {"created", created},
          {"model", model},
          {"choices", Json::array({choice})}};
}

Json chat_usage_chunk_json(const std::string& id, int64_t created, const std::string& model,
                           const AskResult& r) {
  return {{"id", id},       {"object", "chat.completion.chunk"}, {"created", created},
          {"model", model}, {"choices", Json::array()},          {"usage", usage_json(r)}};
}

}  // namespace ovis::serve
