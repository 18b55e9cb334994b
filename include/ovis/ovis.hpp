// ovis.cpp public C++ API: load an Ovis-U1 Hugging Face snapshot folder once, then answer
// questions about images (ask), generate images from text (generate) and edit images from
// instructions (edit). See the README for the command-line front end.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.hpp"
#include "core/tensor.hpp"
#include "io/image.hpp"
#include "llm/sampler.hpp"

namespace ovis {

struct LoadTimings {
  double load_s = 0;
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
  // Optional initial noise [4, H/8, W/8] (or [1, 4, H/8, W/8]) replacing the seeded generator.
  std::optional<Tensor> init_noise;
  ProgressFn on_progress;
};

struct EditRequest {
  Image input;
  std::string instruction;
  int steps = 50;
  float cfg_scale = 6.0f;      // text CFG
  float img_cfg_scale = 1.5f;  // image CFG
  uint64_t seed = 42;
  std::optional<Tensor> init_noise;
  ProgressFn on_progress;
};

struct ImageResult {
  Image image;
  int width = 0, height = 0;
  double condition_s = 0, denoise_s = 0, decode_s = 0;
  std::vector<std::string> warnings;  // e.g. the requested size was changed
};

class Pipeline {
 public:
  // Loads and validates the whole checkpoint folder (config, tokenizer, every tensor).
  static std::unique_ptr<Pipeline> load(const std::string& model_dir);
  virtual ~Pipeline() = default;

  virtual AskResult ask(const AskRequest& req) = 0;
  virtual ImageResult generate(const GenerateRequest& req) = 0;
  virtual ImageResult edit(const EditRequest& req) = 0;
  virtual const std::string& model_dir() const = 0;
};

}  // namespace ovis
