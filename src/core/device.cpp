#include "core/device.hpp"

#include <cstdlib>

#include "core/error.hpp"

namespace ovis {

std::string Device::str() const {
  return type == Type::CPU ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s, const std::string& what) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8) {
    int n = 0;
    for (size_t i = 5; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') fail(what, " '", s, "': expected cpu, cuda or cuda:N");
      n = n * 10 + (s[i] - '0');
    }
    return cuda(n);
  }
  fail(what, " '", s, "': expected cpu, cuda or cuda:N");
}

}  // namespace ovis
