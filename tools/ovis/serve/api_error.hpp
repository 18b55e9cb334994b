// Errors in the OpenAI wire format: {"error": {"message", "type", "param", "code"}} with the
// matching HTTP status. Everything the server refuses is thrown as ApiError.
#pragma once
#include <stdexcept>
#include <string>

namespace ovis::serve {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string code, std::string message,
           std::string param = "");
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  const std::string& param() const { return param_; }
  // The JSON body.
  std::string body() const;

 private:
  int status_;
  std::string type_, code_, param_;
};

// 400 invalid_request_error, naming the offending field.
ApiError invalid_request(const std::string& param, const std::string& message,
                         const std::string& code = "invalid_value");
// The JSON body of an error with this status and message (for errors raised outside handlers).
std::string error_body(int status, const std::string& message);

}  // namespace ovis::serve
