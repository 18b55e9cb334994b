// Server-sent events as OpenAI streams them: "data: <json>\n\n" per event (optionally preceded
// by "event: <name>\n"), ending with "data: [DONE]\n\n".
#pragma once
#include <string>

#include "serve/json_fields.hpp"

namespace ovis::serve {

std::string sse_event(const Json& data, const std::string& event_name = "");
std::string sse_done();
// A comment line: keeps idle connections (and proxies) from timing out; clients ignore it.
std::string sse_comment(const std::string& text);

}  // namespace ovis::serve
