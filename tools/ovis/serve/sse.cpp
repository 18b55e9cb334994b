#include "serve/sse.hpp"

namespace ovis::serve {

std::string sse_event(const Json& data, const std::string& event_name) {
  std::string out;
  if (!event_name.empty()) out += "event: " + event_name + "\n";
  // dump() escapes newlines inside strings, so the payload is one line.
  out += "data: " + data.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
  return out;
}

std::string sse_done() {
  return "data: [DONE]\n\n";
}

std::string sse_comment(const std::string& text) {
  return ": " + text + "\n\n";
}

}  // namespace ovis::serve
