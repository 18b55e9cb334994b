// Entry points of the CUDA backend for the backend registry (src/ops/registry.cpp). No CUDA
// headers here: the registry is compiled by the host compiler.
#pragma once
#include <memory>
#include <string>

#include "ops/backend.hpp"
#include "ops/context.hpp"

namespace ovis::ops::cuda {

// CUDA devices visible to this process (0 when there is no driver or no GPU).
int device_count();
// Why device_count() is 0, for error messages ("no CUDA driver", "no CUDA-capable device").
std::string unavailable_reason();
DeviceInfo device_info(int index);
// A backend on `device` (its own view of the device's stream, allocator and library handles);
// throws ovis::Error with one clear line when the device is not available.
std::unique_ptr<Backend> make_backend(Device device, const BackendOptions& opts);

}  // namespace ovis::ops::cuda
