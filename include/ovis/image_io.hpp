// Image files, public API: PNG and JPEG decode to 8-bit RGB, PNG (with text chunks) and JPEG
// encode. Decoding converts to RGB exactly as Pillow's Image.open(...).convert('RGB') does: alpha
// is dropped (not composited), gray is replicated, 16-bit colour keeps the high byte, 16-bit gray
// saturates at 255, palettes are looked up; no gamma or ICC transform is applied.
// Input files are untrusted: every failure throws ovis::Error with one line naming the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ovis/types.hpp"

namespace ovis {

// Limits applied to every decoded image (and to encode/resize targets).
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 26;  // 64 Mpx, 192 MiB of RGB8

// Throws unless 1 <= width, height <= kMaxImageSide and width * height <= kMaxImagePixels.
void check_image_size(int64_t width, int64_t height, const std::string& what);

// Reads and decodes a PNG or JPEG file; the format comes from the magic bytes, not the name.
Image read_image(const std::string& path);
// Decodes an in-memory PNG or JPEG; `name` is used in error messages. `max_pixels` tightens the
// pixel limit for untrusted input: the size is read from the header and refused before any pixel
// memory is allocated (a small file cannot make the decoder allocate more).
Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   int64_t max_pixels = kMaxImagePixels);

using TextChunks = std::vector<std::pair<std::string, std::string>>;

// Writes `img` as PNG (.png) or JPEG (.jpg/.jpeg), chosen by the extension (case-insensitive);
// any other extension is an error. PNG gets one text chunk per (key, value): tEXt when the
// value is ASCII, else iTXt (UTF-8), as Pillow's PngInfo.add_text does; keys must be 1-79
// printable Latin-1 characters. JPEG ignores `text`; jpeg_quality is 1..100.
// The file is written to a temporary sibling and renamed into place, so a failure never
// leaves a partial file at `path`.
void write_image(const std::string& path, const Image& img, const TextChunks& text = {},
                 int jpeg_quality = 95);

enum class ImageFormat { Png, Jpeg };

// The bytes write_image would write for this format (same text chunks and quality rules).
std::vector<uint8_t> encode_image(const Image& img, ImageFormat format, const TextChunks& text = {},
                                  int jpeg_quality = 95);

// Text chunks (tEXt, zTXt, iTXt) of a PNG file, in file order (values as stored: Latin-1 for
// tEXt/zTXt, UTF-8 for iTXt).
TextChunks read_png_text(const std::string& path);

}  // namespace ovis
