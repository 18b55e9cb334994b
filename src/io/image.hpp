// Image files (public part: ovis/image_io.hpp) and their conversion to tensors.
#pragma once
#include "core/tensor.hpp"
#include "ovis/image_io.hpp"

namespace ovis {

// [H, W, 3] U8 tensor copy of the pixels, and back.
Tensor image_to_tensor_u8(const Image& img);
Image image_from_tensor_u8(const Tensor& hwc_u8);

}  // namespace ovis
