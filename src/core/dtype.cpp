#include "core/dtype.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/quant_blocks.hpp"

namespace ovis {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::Q8_0:
    case DType::Q4_K:
      fail("internal error: per-element size of block-quantized ", dtype_name(t));
    case DType::F32:
      return 4;
    case DType::BF16:
      return 2;
    case DType::F16:
      return 2;
    case DType::I64:
      return 8;
    case DType::I32:
      return 4;
    case DType::U8:
      return 1;
    case DType::F64:
      return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::BF16:
      return "BF16";
    case DType::F16:
      return "F16";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::U8:
      return "U8";
    case DType::F64:
      return "F64";
    case DType::Q8_0:
      return "Q8_0";
    case DType::Q4_K:
      return "Q4_K";
  }
  return "?";
}

bool dtype_is_quantized(DType t) {
  return t == DType::Q8_0 || t == DType::Q4_K;
}

int64_t dtype_block_elems(DType t) {
  if (t == DType::Q8_0) return kQ8_0Block;
  if (t == DType::Q4_K) return kQ4_KBlock;
  return 1;
}

size_t dtype_block_bytes(DType t) {
  if (t == DType::Q8_0) return sizeof(BlockQ8_0);
  if (t == DType::Q4_K) return sizeof(BlockQ4_K);
  return dtype_size(t);
}

size_t dtype_bytes(DType t, int64_t n) {
  const int64_t b = dtype_block_elems(t);
  if (n < 0 || n % b != 0)
    fail("internal error: ", n, " elements of ", dtype_name(t), " are not whole blocks of ", b);
  return size_t(n / b) * dtype_block_bytes(t);
}

bool dtype_from_safetensors(const std::string& s, DType* out) {
  if (s == "F32")
    *out = DType::F32;
  else if (s == "BF16")
    *out = DType::BF16;
  else if (s == "F16")
    *out = DType::F16;
  else if (s == "I64")
    *out = DType::I64;
  else if (s == "I32")
    *out = DType::I32;
  else if (s == "U8")
    *out = DType::U8;
  else
    return false;
  return true;
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: value = mant * 2^-24
      float f = std::ldexp(float(mant), -24);
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;
  if (a < 6.103515625e-05f) {  // subnormal half
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  uint32_t exp = ((u >> 23) & 0xff) - 112;
  uint32_t mant = u & 0x7fffff;
  uint32_t half = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
  return sign | uint16_t(half);
}

}  // namespace ovis
