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
  std::string system;  // when not empty: a system turn before the question
  int max_new_tokens = 512;
  SamplerParams sampling;  // temperature 0 = greedy (the reference's setting)
  // Called with each decoded text piece as soon as it is complete UTF-8; return false to stop.
  std::function<bool(std::string_view)> on_text;
  ProgressFn on_progress;
  CancelFn should_cancel;
};

// A conversation for Pipeline::chat, formatted with the model's Qwen3 chat format (spec §3.2).
enum class ChatRole { System, User, Assistant };

// One piece of a message: text, or an image when `image` is not empty.
struct ChatPart {
  std::string text;
  Image image;
  bool is_image() const { return !image.empty(); }
};

// Where a message's images go: when every image part comes before every text part (the usual
// "images, then a question"), the text is placed as AskRequest places it, so a single user
// message [image..., text] formats exactly like ask({text, images}); several text parts are
// joined with "\n". Otherwise the parts are joined in order: an image part becomes "<image>\n",
// a text part its text followed by "\n" unless it is the last part. Only user messages may hold
// images; "<image>" typed into the text of an images-first message places the images as in ask
// (their number must match), elsewhere it is refused.
struct ChatMessage {
  ChatRole role = ChatRole::User;
  std::vector<ChatPart> content;
};

struct ChatRequest {
  std::vector<ChatMessage> messages;  // ends with a user message
  int max_new_tokens = 512;
  SamplerParams sampling;
  // Generation ends before the first occurrence of any of these strings; neither the returned
  // text nor on_text ever contains it (text that may start one is held back until it is
  // decided).
  std::vector<std::string> stop;
  std::function<bool(std::string_view)> on_text;
  ProgressFn on_progress;  // "vision" per image
  CancelFn should_cancel;
};

// The prompt text `messages` format to, with "<image>" where each image's tokens go (no model
// needed; throws ovis::Error for a conversation chat() would refuse).
std::string format_chat_prompt(const std::vector<ChatMessage>& messages);

// Why decoding ended: Stop = end-of-turn token, a stop string, or on_text returned false;
// Length = max_new_tokens were generated.
enum class FinishReason { Stop, Length };

struct AskResult {
  std::string text;
  std::vector<int32_t> tokens;  // every generated token (a stop string's tokens included)
  int prompt_tokens = 0;        // sequence length fed to the LLM, visual tokens included
  FinishReason finish_reason = FinishReason::Stop;
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
  CancelFn should_cancel;
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
  CancelFn should_cancel;
};

struct ImageResult {
  Image image;
  int width = 0, height = 0;
  double condition_s = 0, denoise_s = 0, decode_s = 0;
  std::vector<std::string> warnings;  // e.g. the requested size was changed
};

// What produced an image, for the "parameters" PNG text chunk that `ovis generate`, `ovis edit`
// and `ovis serve` write (the A1111 / sd-cli format).
struct ImageParameters {
  std::string prompt;
  int steps = 0;
  float cfg_scale = 0;
  std::optional<float> img_cfg_scale;  // edits
  uint64_t seed = 0;
  int width = 0, height = 0;  // of the produced image
  std::string model;          // recorded as given (a repo id or a folder's name)
  std::string rng;            // noise generator; "" and "philox" (the default) are not recorded
};

// "<prompt>\nSteps: 20, Sampler: Euler (flow matching), CFG scale: 5, Seed: 42, Size: 512x512,
// Model: AIDC-AI/Ovis-U1-3B, Version: ovis.cpp 0.1.0", with ", Image CFG scale: 1.5" after the
// CFG scale for edits and ", RNG: torch-cuda" after the seed for a non-default noise generator.
std::string parameters_text(const ImageParameters& p);

// The parameters of `result`, produced from `req` by the model recorded as `model`.
ImageParameters image_parameters(const GenerateRequest& req, const ImageResult& result,
                                 const std::string& model);
ImageParameters image_parameters(const EditRequest& req, const ImageResult& result,
                                 const std::string& model);

// Throw ovis::Error, naming the option, for a request that generate(), edit() or the sampling of
// ask()/chat() would refuse; they need no model, so a front end can check before loading one.
// Guidance scales must lie in [0, kMaxGuidanceScale].
inline constexpr float kMaxGuidanceScale = 50.0f;
void validate(const GenerateRequest& req);
void validate(const EditRequest& req);
void validate(const SamplerParams& sampling);

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

  // Tasks run on the calling thread. A task may be started from inside another task's callback
  // on the same thread (a chat between two denoising steps of an image); tasks must not run on
  // one Pipeline from several threads at once.
  virtual AskResult ask(const AskRequest& req) = 0;  // = chat with one user message
  virtual AskResult chat(const ChatRequest& req) = 0;
  virtual ImageResult generate(const GenerateRequest& req) = 0;
  virtual ImageResult edit(const EditRequest& req) = 0;

  virtual const std::string& model_dir() const = 0;
  virtual std::string device_name() const = 0;  // "cpu", "cuda:0"
  virtual Precision precision() const = 0;      // never Auto
  virtual int threads() const = 0;
  virtual MemoryStats memory() const = 0;
};

}  // namespace ovis
