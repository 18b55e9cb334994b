// Element types and scalar conversions. bf16/f16 are stored as raw uint16_t. Q8_0 and Q4_K are
// ggml's block-quantized types (core/quant_blocks.hpp): a row of n elements (n a multiple of the
// block) takes n / block_elems * block_bytes bytes, so sizes go through dtype_bytes().
#pragma once
#include <cstdint>
#include <cstring>
#include <string>

namespace ovis {

enum class DType : uint8_t { F32, BF16, F16, I64, I32, U8, F64, Q8_0, Q4_K };

// Bytes of one element; an internal error for block-quantized types (use dtype_bytes).
size_t dtype_size(DType t);
bool dtype_is_quantized(DType t);
// Elements per block (1 for plain types) and bytes per block.
int64_t dtype_block_elems(DType t);
size_t dtype_block_bytes(DType t);
// Bytes of n consecutive elements; n must be a multiple of the block (internal error otherwise).
size_t dtype_bytes(DType t, int64_t n);
const char* dtype_name(DType t);
// Parses a safetensors dtype string ("F32", "BF16", ...); returns false if unknown.
bool dtype_from_safetensors(const std::string& s, DType* out);

inline float bf16_to_f32(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round-to-nearest-even, as torch's float->bfloat16 cast (NaN stays NaN).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float round_bf16(float f) {
  return bf16_to_f32(f32_to_bf16(f));
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

}  // namespace ovis
