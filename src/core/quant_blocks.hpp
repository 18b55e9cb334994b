// ggml's block-quantized weight formats, byte for byte (GGUF type ids 8 and 12), and their
// reference (scalar) quantisation and dequantisation of one row.
//   Q8_0: blocks of 32 values: fp16 scale d, 32 int8 q; value = d·q.
//   Q4_K: super-blocks of 256 values in 8 sub-blocks of 32: fp16 d and dmin, 12 bytes packing a
//         6-bit scale sc[j] and min m[j] per sub-block, 128 bytes of 4-bit q;
//         value = d·sc[j]·q − dmin·m[j]. Bytes 32c..32c+31 of qs hold sub-block 2c in their low
//         nibbles and sub-block 2c+1 in their high nibbles.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ovis {

inline constexpr int64_t kQ8_0Block = 32;
inline constexpr int64_t kQ4_KBlock = 256;

struct BlockQ8_0 {
  uint16_t d;  // fp16
  int8_t qs[kQ8_0Block];
};
static_assert(sizeof(BlockQ8_0) == 34);

struct BlockQ4_K {
  uint16_t d;     // fp16 scale of the sub-block scales
  uint16_t dmin;  // fp16 scale of the sub-block mins
  uint8_t scales[12];
  uint8_t qs[kQ4_KBlock / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Sub-block j's 6-bit scale and min from the packed 12 bytes.
inline void q4k_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// n must be a multiple of the block size.
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
void quantize_row_q4_k(const float* x, BlockQ4_K* y, int64_t n);
void dequantize_row_q4_k(const BlockQ4_K* x, float* y, int64_t n);

}  // namespace ovis
