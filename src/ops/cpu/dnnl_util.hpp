// Shared oneDNN engine/stream for the CPU backend.
#pragma once
#include <oneapi/dnnl/dnnl.hpp>

namespace ovis::ops::cpu {

dnnl::engine& dnnl_engine();
// A stream for the calling thread (oneDNN streams are not thread-safe to share).
dnnl::stream& dnnl_stream();

}  // namespace ovis::ops::cpu
