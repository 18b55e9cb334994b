// Where a tensor's memory lives: the host (CPU) or one CUDA device.
#pragma once
#include <cstdint>
#include <string>

namespace ovis {

struct Device {
  enum class Type : uint8_t { CPU, CUDA };
  Type type = Type::CPU;
  int index = 0;

  static constexpr Device cpu() { return Device{Type::CPU, 0}; }
  static constexpr Device cuda(int index = 0) { return Device{Type::CUDA, index}; }
  bool is_host() const { return type == Type::CPU; }
  std::string str() const;  // "cpu", "cuda:0"
  // "cpu", "cuda" (= cuda:0) or "cuda:N"; throws ovis::Error naming `what` otherwise.
  static Device parse(const std::string& s, const std::string& what = "--device");
  bool operator==(const Device&) const = default;
};

}  // namespace ovis
