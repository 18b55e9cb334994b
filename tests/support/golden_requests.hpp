// The fixture manifest's T2I and edit cases as public-API requests (with their golden noise), and
// the PSNR of an image against a golden u8 image: shared by the tests that run the image cases
// under other conditions (quantized files, the GPU).
#pragma once
#include <string>

#include "core/tensor.hpp"
#include "ovis/ovis.hpp"

namespace ovis::test {

GenerateRequest golden_t2i_request(const std::string& name);  // "t2i_128x128", "t2i_128x192"
EditRequest golden_edit_request();                            // "edit_128x160"
// 8-bit PSNR in dB (99 when identical).
double psnr(const Image& a, const Tensor& golden_u8);

}  // namespace ovis::test
