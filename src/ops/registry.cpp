// Which backends this binary has, and the devices they see.
#include <unistd.h>

#include <fstream>

#include "core/error.hpp"
#include "ops/backend.hpp"
#include "ops/cpu/cpu_backend.hpp"
#include "ops/cpu/features.hpp"
#if defined(OVIS_CUDA)
#include "ops/cuda/cuda_backend.hpp"
#endif

namespace ovis::ops {

namespace {

int cuda_devices() {
#if defined(OVIS_CUDA)
  return cuda::device_count();
#else
  return 0;
#endif
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown CPU";
}

}  // namespace

std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& opts) {
  if (device.is_host()) return std::make_unique<cpu::CpuBackend>(opts);
#if defined(OVIS_CUDA)
  return cuda::make_backend(device, opts);
#else
  fail("--device ", device.str(),
       ": this build has no CUDA backend (configure with -DOVIS_CUDA=ON)");
#endif
}

Device default_device() {
  return cuda_devices() > 0 ? Device::cuda(0) : Device::cpu();
}

Precision default_precision(Device device) {
  if (!device.is_host()) return Precision::BF16;
  return cpu::has_avx512_bf16() ? Precision::BF16 : Precision::F32;
}

Precision resolve(Precision p, Device device) {
  return p == Precision::Auto ? default_precision(device) : p;
}

std::string cuda_unavailable_reason() {
#if defined(OVIS_CUDA)
  return cuda_devices() > 0 ? std::string() : cuda::unavailable_reason();
#else
  return "this build has no CUDA backend (configure with -DOVIS_CUDA=ON)";
#endif
}

std::vector<DeviceInfo> list_devices() {
  std::vector<DeviceInfo> out;
  DeviceInfo cpu_info;
  cpu_info.device = Device::cpu();
  std::string isa = cpu::amx_enabled()                  ? "AMX, AVX512_BF16"
                    : cpu::has_avx512_bf16()            ? "AVX512_BF16"
                    : __builtin_cpu_supports("avx512f") ? "AVX-512"
                                                        : "AVX2";
  cpu_info.name =
      cpu_model() + " (" + std::to_string(cpu::resolve_threads(0)) + " threads, " + isa + ")";
  const long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES),
             page = sysconf(_SC_PAGE_SIZE);
  cpu_info.total_memory = int64_t(pages) * page;
  cpu_info.free_memory = int64_t(avail) * page;
  out.push_back(cpu_info);
#if defined(OVIS_CUDA)
  for (int i = 0; i < cuda_devices(); ++i) out.push_back(cuda::device_info(i));
#endif
  return out;
}

}  // namespace ovis::ops
