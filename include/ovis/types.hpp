// Plain value types of the public API (no dependencies): images, sampling parameters, progress
// events and load options. Internal code uses the same types, so nothing is converted at the API
// boundary.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ovis {

// HWC RGB8, row-major, rgb.size() == width * height * 3.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;

  static Image filled(int width, int height, uint8_t r, uint8_t g, uint8_t b);
  bool empty() const { return width == 0 || height == 0; }
  const uint8_t* pixel(int x, int y) const { return &rgb[(size_t(y) * width + x) * 3]; }
};

// Next-token selection: greedy (temperature 0, the reference's setting) or temperature -> top-k
// -> top-p sampling (the Hugging Face warper order).
struct SamplerParams {
  float temperature = 0;  // 0 = greedy
  int top_k = 0;          // 0 = no top-k filter
  float top_p = 1.0f;     // 1 = no nucleus filter
  uint64_t seed = 0;
};

struct ProgressEvent {
  std::string stage;  // "vision", "condition", "denoise", "vae decode", ...
  int step = 0;       // completed units, 0..total
  int total = 0;
  double elapsed_s = 0;     // since the stage started
  std::string unit = "it";  // what step counts ("MiB" for downloads): rates read s/it or MiB/s
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

// Numeric policy of a loaded model. F32: float32 activations from upcast weights (what the golden
// tests run). BF16: bf16 GEMM/attention inputs with fp32 accumulation, as the reference runs on
// GPU. Auto: BF16 where the device runs it fast (AVX512_BF16 CPUs, every CUDA GPU), else F32.
enum class Precision { Auto, F32, BF16 };
const char* precision_name(Precision p);
// "f32" | "bf16" | "auto"; throws ovis::Error naming `what` otherwise.
Precision parse_precision(const std::string& s, const std::string& what = "--precision");

// The generator of the initial noise. Philox: this project's documented generator (same image
// for a seed on every machine). TorchCuda: torch.randn on a CUDA generator seeded with the seed,
// in bf16, as the reference pipeline draws it (so a seed starts from the reference's noise;
// bit-exact on a GPU, see src/ops/torch_randn.hpp for the host computation).
enum class NoiseRng { Philox, TorchCuda };
const char* noise_rng_name(NoiseRng r);
// "philox" | "torch-cuda"; throws ovis::Error naming `what` otherwise.
NoiseRng parse_noise_rng(const std::string& s, const std::string& what = "--rng");

// A dense float32 host array with its shape, e.g. an initial-noise tensor.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

}  // namespace ovis
