// The model work behind each endpoint, as jobs for the Scheduler: a chat completion, and n
// generated or edited images (PNG with the "parameters" chunk, or JPEG).
#pragma once
#include <memory>
#include <string>

#include "serve/chat_wire.hpp"
#include "serve/image_wire.hpp"
#include "serve/job.hpp"

namespace ovis::serve {

// Emits Text events while decoding, then Finished with the AskResult.
std::shared_ptr<Job> make_chat_job(ChatRequest request);

// Emits Progress events (and lets waiting chats run) at every stage and step, one Image event
// per image, then Finished. `request.seed` must be set.
std::shared_ptr<Job> make_image_job(ImageJobRequest request, std::string model_name);

}  // namespace ovis::serve
