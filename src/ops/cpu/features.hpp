// CPU features the backend dispatches on, beyond what -march decides at compile time.
#pragma once

namespace ovis::ops::cpu {

// AMX tiles (AMX-TILE + AMX-BF16) are compiled in, present, granted by the OS to this process
// (Linux arch_prctl XTILEDATA) and not switched off with set_amx_allowed(false).
bool amx_enabled();
// Lets tests and benchmarks exercise the non-AMX kernels. Returns the previous setting.
bool set_amx_allowed(bool allowed);

}  // namespace ovis::ops::cpu
