#include "ops/cpu/features.hpp"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace ovis::ops::cpu {

namespace {

std::atomic<bool> g_amx_allowed{true};

bool amx_usable() {
#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__linux__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool tile = edx & (1u << 24), bf16 = edx & (1u << 22);
  if (!tile || !bf16) return false;
  // Linux hands out the 8 KiB tile state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA).
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace

bool amx_enabled() {
  static const bool usable = amx_usable();
  return usable && g_amx_allowed.load(std::memory_order_relaxed);
}

bool set_amx_allowed(bool allowed) {
  return g_amx_allowed.exchange(allowed);
}

}  // namespace ovis::ops::cpu
