// What one request may ask of `ovis serve`. Each limit is a command-line option and is answered
// with a 4xx error naming the field when exceeded (README "Server", Limits).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ovis::serve {

struct Limits {
  size_t max_body_bytes = size_t(32) << 20;  // whole request body (JSON or multipart)
  // Decoded pixels of all images of one request together, checked from each image's header
  // before its pixels are allocated (decompression bombs).
  int64_t max_pixels = 16'000'000;
  int max_images = 8;            // images in one chat request
  int max_tokens = 2048;         // chat max_tokens
  int default_max_tokens = 512;  // when a chat request names none
  int max_n = 4;                 // images per generation/edit request
  int max_steps = 100;           // denoising steps
  int max_side = 2048;           // generation width and height
  size_t max_queue = 16;         // jobs waiting for the model; more are answered 429
};

}  // namespace ovis::serve
