// The golden harness (llm.c style): the tiny fixture's manifest and golden tensors, read with the
// project's own safetensors reader, and comparisons that report the max error and where it is.
#pragma once
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "core/tensor.hpp"
#include "io/safetensors.hpp"
#include "ovis/types.hpp"

namespace ovis::test {

// Folder of the tiny fixture (env OVIS_FIXTURE_DIR overrides the build-time default).
std::string fixture_dir();
std::string fixture_path(const std::string& rel);
const nlohmann::json& manifest();
// The case object with this "name" (fails the test if absent).
const nlohmann::json& manifest_case(const std::string& name);
// Golden tensor by full name ("vit_cat.layer0_out"), as stored (F32/I64/U8).
Tensor golden(const std::string& name);
bool has_golden(const std::string& name);
// "SHARD:NAME" for the golden shard holding tensor `name` (the FILE:TENSOR form of --init-noise).
std::string golden_file_arg(const std::string& name);
// The same golden as float32 values with its shape (for the public API's HostTensor).
HostTensor golden_host(const std::string& name);
// Tolerance string the manifest attaches to this golden.
std::string golden_tolerance(const std::string& name);

struct CompareResult {
  double max_abs = 0;   // max |a - b|
  int64_t where = -1;   // flat index of max_abs
  double max_ref = 0;   // max |b|
  double mean_abs = 0;  // mean |a - b|
  std::string describe(const std::string& what) const;
};
CompareResult compare(const float* actual, const float* expected, int64_t n);

// actual vs golden `name` at max|a-b| <= rel * max(1, max|ref|). Shapes (numel) must agree.
::testing::AssertionResult close_rel(const Tensor& actual, const std::string& name, double rel);
// The tolerance of the manifest's tolerance string for `name` (fwd_f32, logits_f32, prep_f32, ...).
::testing::AssertionResult matches_golden(const Tensor& actual, const std::string& name);
// Same, but against an explicit tensor with an explicit relative tolerance.
::testing::AssertionResult close_to(const Tensor& actual, const Tensor& expected, double rel,
                                    const std::string& what);
// Per-element |a - b| statistics of two equally sized uint8 tensors.
struct U8Diff {
  int max_abs = 0;
  double mean_abs = 0;
};
U8Diff diff_u8(const Tensor& a, const Tensor& b);
// The manifest's decoded-image tolerance for `name` (max|a-b| <= 2, mean|a-b| <= 0.02); actual is
// a U8 [H, W, 3] tensor (image_to_tensor_u8 of an Image).
::testing::AssertionResult matches_image_u8(const Tensor& actual, const std::string& name);
// Exact equality for integer/uint8 goldens.
::testing::AssertionResult equals_golden_u8(const Tensor& actual_u8, const std::string& name);

}  // namespace ovis::test
