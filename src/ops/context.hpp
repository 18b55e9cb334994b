// What every op runs with: the backend (a device's implementation of the ops, with its allocator
// and its threads or stream) and the numeric policy. A Context is a small value owned by
// whoever runs a model (the Pipeline, a test, a benchmark); models keep the context they were
// bound with. Nothing here is process-global.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/device.hpp"
#include "core/dtype.hpp"
#include "ovis/types.hpp"

namespace ovis::ops {

using ovis::Precision;  // F32 | BF16 here (Auto is resolved when a context is made)

class Backend;

struct Context {
  Backend* backend = nullptr;
  Precision precision = Precision::F32;

  Device device() const;
  // The dtype activations are kept in between ops: a backend decision (the CPU keeps float32 and
  // rounds GEMM inputs to bf16 in BF16 precision; a GPU keeps bf16 activations in BF16 precision).
  DType act_dtype() const;
  Context with_precision(Precision p) const {
    Context c = *this;
    c.precision = p;
    return c;
  }
};

struct BackendOptions {
  int threads = 0;  // CPU: 0 = OMP_NUM_THREADS if set, else all cores
  // CPU: target bytes of one input band of a banded VAE convolution (bounds its temporaries).
  size_t conv_band_bytes = size_t(32) << 20;
};

// A backend for `device`; throws ovis::Error with one clear line when the device is not
// available (no CUDA backend in this build, no such GPU).
std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& opts = {});
// cuda:0 when a CUDA backend is built in and a GPU is present, else cpu.
Device default_device();
// BF16 where the device runs it fast (AVX512_BF16 CPUs, CUDA GPUs), else F32.
Precision default_precision(Device device);
Precision resolve(Precision p, Device device);

struct DeviceInfo {
  Device device;
  std::string name;          // "CPU: AMD EPYC ... (avx512bf16)", "NVIDIA H200"
  int64_t total_memory = 0;  // bytes
  int64_t free_memory = 0;
};
std::vector<DeviceInfo> list_devices();
// Empty when CUDA devices are usable; else why not ("this build has no CUDA backend", "no
// NVIDIA driver is installed", ...).
std::string cuda_unavailable_reason();

}  // namespace ovis::ops
