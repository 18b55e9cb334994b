// What generate(), edit() and chat() refuse, checked before any work; public so that a front end
// can check a request before it loads a model.
#include "core/error.hpp"
#include "llm/token_sampler.hpp"
#include "ovis/ovis.hpp"

namespace ovis {

namespace {

constexpr int kMaxSteps = 1000;
// Largest side accepted for generation (2048² is supported; beyond that memory grows quickly).
constexpr int kMaxGenerateSide = 4096;

void check_steps(int steps) {
  if (steps < 1 || steps > kMaxSteps)
    fail("--steps must be between 1 and ", kMaxSteps, " (got ", steps, ")");
}

// NaN and infinities fail too: they would make every pixel NaN.
void check_guidance(const char* flag, float v) {
  if (!(v >= 0.0f && v <= kMaxGuidanceScale))
    fail(flag, " must be a number in [0, ", kMaxGuidanceScale, "] (got ", v, ")");
}

}  // namespace

// The sampler's constructor is where its settings are checked.
void validate(const SamplerParams& p) {
  TokenSampler{p};
}

void validate(const GenerateRequest& req) {
  if (req.prompt.empty()) fail("empty prompt: -p TEXT is required");
  check_steps(req.steps);
  if (req.width < 16 || req.height < 16 || req.width > kMaxGenerateSide ||
      req.height > kMaxGenerateSide)
    fail("image size ", req.width, "x", req.height,
         " is impossible: width and height must be in [16, ", kMaxGenerateSide, "]");
  check_guidance("--cfg-scale", req.cfg_scale);
}

void validate(const EditRequest& req) {
  if (req.instruction.empty()) fail("empty prompt: -p INSTRUCTION is required");
  if (req.input.empty()) fail("edit needs an input image (-i)");
  check_steps(req.steps);
  check_guidance("--cfg-scale", req.cfg_scale);
  check_guidance("--img-cfg-scale", req.img_cfg_scale);
}

}  // namespace ovis
