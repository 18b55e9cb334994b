// ovis.cpp public C++ API: load an Ovis-U1 Hugging Face snapshot folder once, then answer
// questions about images (ask), generate images from text (generate) and edit images from
// instructions (edit). Self-contained: it includes only the other public headers. See the README
// for the command-line front end.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ovis/image_io.hpp"
#include "ovis/types.hpp"

namespace ovis {

// Where and how a model runs. Owned by the Pipeline: nothing here is process-global.
struct LoadOptions {
  std::string device = "auto";  // "cpu", "cuda", "cuda:N"; auto = cuda:0 if present, else cpu
  Precision precision = Precision::Auto;
  int threads = 0;  // CPU threads; 0 = OMP_NUM_THREADS if set, else all cores
};

struct AskRequest {
  // The question. "<image>" markers place the images; without markers the images are placed
  // first ("<image>\n" for one, "Image 1: <image>\nImage 2: <image>\n..." for several).
  std::string prompt;
  std::vector<Image> images;
  int max_new_tokens = 512;
  SamplerParams sampling;  // temperature 0 = greedy (the reference's setting)
  // Called with each decoded text piece as soon as it is complete UTF-8; return false to stop.
  std::function<bool(std::string_view)> on_text;
  ProgressFn on_progress;
};

struct AskResult {
  std::string text;
  std::vector<int32_t> tokens;
  int prompt_tokens = 0;
  double vision_s = 0, prefill_s = 0, decode_s = 0;
};

struct GenerateRequest {
  std::string prompt;
  int width = 1024, height = 1024;  // floored to multiples of 16 (spec §7.3)
  int steps = 50;
  float cfg_scale = 5.0f;
  uint64_t seed = 42;
  NoiseRng rng = NoiseRng::Philox;
  // Optional initial noise [4, H/8, W/8] (or [1, 4, H/8, W/8]) replacing the seeded generator.
  std::optional<HostTensor> init_noise;
  ProgressFn on_progress;
};

struct EditRequest {
  Image input;
  std::string instruction;
  int steps = 50;
  float cfg_scale = 6.0f;      // text CFG
  float img_cfg_scale = 1.5f;  // image CFG
  uint64_t seed = 42;
  NoiseRng rng = NoiseRng::Philox;
  std::optional<HostTensor> init_noise;
  ProgressFn on_progress;
};

struct ImageResult {
  Image image;
  int width = 0, height = 0;
  double condition_s = 0, denoise_s = 0, decode_s = 0;
  std::vector<std::string> warnings;  // e.g. the requested size was changed
};

// Activation memory of the device the pipeline runs on (the caching allocator's counters).
struct MemoryStats {
  int64_t in_use_bytes = 0;  // held by live tensors
  int64_t peak_bytes = 0;    // high-water mark of in_use_bytes
  int64_t cached_bytes = 0;  // free blocks kept for reuse
};

class Pipeline {
 public:
  // Loads and validates the whole checkpoint folder (config, tokenizer, every tensor) onto the
  // device of `opts`.
  static std::unique_ptr<Pipeline> load(const std::string& model_dir, const LoadOptions& opts = {});
  virtual ~Pipeline() = default;

  virtual AskResult ask(const AskRequest& req) = 0;
  virtual ImageResult generate(const GenerateRequest& req) = 0;
  virtual ImageResult edit(const EditRequest& req) = 0;

  virtual const std::string& model_dir() const = 0;
  virtual std::string device_name() const = 0;  // "cpu", "cuda:0"
  virtual Precision precision() const = 0;      // never Auto
  virtual int threads() const = 0;
  virtual MemoryStats memory() const = 0;
};

}  // namespace ovis
