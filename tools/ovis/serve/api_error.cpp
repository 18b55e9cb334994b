#include "serve/api_error.hpp"

#include <nlohmann/json.hpp>

namespace ovis::serve {

namespace {

// OpenAI's error types by status.
const char* type_for_status(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 429:
      return "rate_limit_error";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

const char* code_for_status(int status) {
  switch (status) {
    case 400:
      return "bad_request";
    case 401:
      return "invalid_api_key";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
      return "request_timeout";
    case 411:
      return "length_required";
    case 413:
      return "request_too_large";
    case 414:
      return "uri_too_long";
    case 415:
      return "unsupported_media_type";
    case 416:
      return "range_not_satisfiable";
    case 429:
      return "queue_full";
    case 503:
      return "unavailable";
    default:
      return status >= 500 ? "internal_error" : "bad_request";
  }
}

std::string json_body(const std::string& message, const std::string& type, const std::string& code,
                      const std::string& param) {
  nlohmann::json e = {{"message", message}, {"type", type}, {"code", code}};
  e["param"] = param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param);
  // Messages can quote request bytes: replace invalid UTF-8 rather than throw.
  return nlohmann::json{{"error", e}}.dump(-1, ' ', false,
                                           nlohmann::json::error_handler_t::replace);
}

}  // namespace

ApiError::ApiError(int status, std::string type, std::string code, std::string message,
                   std::string param)
    : std::runtime_error(std::move(message)),
      status_(status),
      type_(std::move(type)),
      code_(std::move(code)),
      param_(std::move(param)) {}

std::string ApiError::body() const {
  return json_body(what(), type_, code_, param_);
}

ApiError invalid_request(const std::string& param, const std::string& message,
                         const std::string& code) {
  return ApiError(400, "invalid_request_error", code, message, param);
}

std::string error_body(int status, const std::string& message) {
  return json_body(message, type_for_status(status), code_for_status(status), "");
}

}  // namespace ovis::serve
