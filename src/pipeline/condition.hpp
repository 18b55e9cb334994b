// The LLM condition of one (query, image) pair for the generator (spec §7.1-7.2).
#pragma once
#include <string>

#include "core/tensor.hpp"
#include "io/image.hpp"
#include "pipeline/components.hpp"

namespace ovis {

// query holds one "<image>" marker (e.g. t2i_condition_query(prompt)); image is fitted to the
// W x H target (process_image_aspectratio), pre-shrunk for the LLM, encoded and merged.
// Returns txt [L, 2*hidden]. If llm_image is given it receives the image the vision tower saw.
Tensor build_condition(const Components& c, const std::string& query, const Image& image, int W,
                       int H, Image* llm_image = nullptr);

}  // namespace ovis
