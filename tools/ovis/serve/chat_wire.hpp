// POST /v1/chat/completions in the OpenAI wire format: the request body as an ovis::ChatRequest,
// and the response objects (whole completion, stream chunks).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ovis/ovis.hpp"
#include "serve/json_fields.hpp"
#include "serve/limits.hpp"

namespace ovis::serve {

struct ChatCompletionRequest {
  ChatRequest chat;              // messages with decoded images, max_new_tokens, sampling, stop
  std::optional<uint64_t> seed;  // sampling seed when temperature > 0 (else the server picks)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Throws ApiError (400) naming the field for anything malformed, unsupported or over `limits`.
ChatCompletionRequest parse_chat_completion(std::string_view body, const Limits& limits);

const char* finish_reason_name(FinishReason r);

// The non-streamed response.
Json chat_completion_json(const std::string& id, int64_t created, const std::string& model,
                          const AskResult& result);
// One chat.completion.chunk: `delta` (e.g. {"content": "..."}), and `finish_reason` when set.
Json chat_chunk_json(const std::string& id, int64_t created, const std::string& model,
                     const Json& delta, const char* finish_reason);
// The final usage chunk of a stream (stream_options.include_usage): empty choices.
Json chat_usage_chunk_json(const std::string& id, int64_t created, const std::string& model,
                           const AskResult& result);
Json usage_json(const AskResult& result);

}  // namespace ovis::serve
