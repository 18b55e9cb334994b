#include "support/backend.hpp"

#include "ops/cpu/cpu_backend.hpp"

namespace ovis::test {

ops::Backend& cpu_backend() {
  static auto* b = ops::make_backend(Device::cpu()).release();
  return *b;
}

ops::Context cpu_ctx(ops::Precision p) {
  return ops::Context{&cpu_backend(), p};
}

bool cpu_has_avx512_bf16() {
  return ops::cpu::has_avx512_bf16();
}

}  // namespace ovis::test
