#include "io/image.hpp"

// clang-format off
#include <cstdio>   // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
// clang-format on
#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csetjmp>
#include <cstring>

#include "core/error.hpp"
#include "io/read_file.hpp"

// libpng and libjpeg report errors through callbacks that must not return, and C++ exceptions
// must not unwind through their C frames. Both therefore longjmp back to a setjmp placed in a
// small function ("*_guarded") whose frame owns no objects with destructors; the C++ caller then
// throws. Library handles are released by RAII owners that live in the caller's frame.

namespace ovis {

namespace {

constexpr size_t kMaxFileBytes = size_t(1) << 30;  // far above any PNG/JPEG within the pixel cap
constexpr png_alloc_size_t kMaxPngChunkBytes = 32u << 20;
// Progressive JPEGs from real encoders have about 10 scans; a file with thousands of tiny scans
// makes libjpeg re-walk the coefficient buffer for each (minutes for a large image). Refused, as
// libjpeg-turbo advises ("scan limit"), past this many.
constexpr int kMaxJpegScans = 500;
// libjpeg's own working memory (coefficient buffers of a progressive image at the pixel cap).
constexpr long kMaxJpegWorkBytes = long(1) << 30;

bool is_png(const uint8_t* d, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}

bool is_jpeg(const uint8_t* d, size_t n) {
  return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
}

// ---------------------------------------------------------------------------------------------
// PNG decode

struct PngSource {
  const uint8_t* data;
  size_t size;
  size_t pos;
  char error[256];
};

void png_on_error(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->error, sizeof src->error, "%s", msg ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_read_from_memory(png_structp png, png_bytep out, size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "file is truncated");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_infop end_info = nullptr;
  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, end_info ? &end_info : nullptr);
  }
};

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int bit_depth = 0, color_type = 0, interlace = 0;
};

// Layout of the rows libpng delivers after the transforms set in png_setup_guarded.
struct PngRowFormat {
  int channels = 0;   // 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
  int bit_depth = 0;  // 8 or 16 (big-endian samples)
  size_t rowbytes = 0;
};

bool png_header_guarded(PngReader& r, PngHeader& h) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_user_limits(r.png, kMaxImageSide, kMaxImageSide);
  // Ancillary chunk payloads (text, ICC, EXIF) above this are refused before allocation.
  png_set_chunk_malloc_max(r.png, kMaxPngChunkBytes);
  png_read_info(r.png, r.info);
  png_get_IHDR(r.png, r.info, &h.width, &h.height, &h.bit_depth, &h.color_type, &h.interlace,
               nullptr, nullptr);
  return true;
}

bool png_setup_guarded(PngReader& r, const PngHeader& h, PngRowFormat& f, int& passes) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  // Palette -> RGB(A) and 1/2/4-bit gray -> 8-bit gray (bit replication, as Pillow's "L;2",
  // "L;4" and "1" unpackers). 16-bit samples are kept and reduced below, because Pillow treats
  // 16-bit gray (mode I;16, saturating convert) differently from 16-bit colour (high byte).
  if (h.color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if (h.color_type == PNG_COLOR_TYPE_GRAY && h.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(r.png);
  passes = png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  f.channels = png_get_channels(r.png, r.info);
  f.bit_depth = png_get_bit_depth(r.png, r.info);
  f.rowbytes = png_get_rowbytes(r.png, r.info);
  return true;
}

// One delivered row -> RGB8, following Pillow's PNG modes and convert('RGB').
void png_row_to_rgb(const uint8_t* in, uint8_t* out, int width, const PngRowFormat& f) {
  const int bps = f.bit_depth / 8;
  const int stride = f.channels * bps;
  for (int x = 0; x < width; ++x, in += stride, out += 3) {
    if (f.channels >= 3) {  // RGB / RGBA: high byte of each 16-bit sample ("RGB;16B")
      out[0] = in[0];
      out[1] = in[bps];
      out[2] = in[2 * bps];
    } else if (f.channels == 2 || bps == 1) {  // LA (16-bit LA is "LA;16B": high byte) or L
      out[0] = out[1] = out[2] = in[0];
    } else {  // 16-bit gray opens as I;16; Pillow's I;16 -> RGB saturates at 255
      uint8_t v = in[0] == 0 ? in[1] : 255;
      out[0] = out[1] = out[2] = v;
    }
  }
}

bool png_rows_guarded(PngReader& r, const PngHeader& h, const PngRowFormat& f, int passes,
                      uint8_t* rgb, uint8_t* raw, bool read_end) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  const int width = int(h.width), height = int(h.height);
  if (passes <= 1) {  // non-interlaced: `raw` holds one row
    for (int y = 0; y < height; ++y) {
      png_read_row(r.png, raw, nullptr);
      png_row_to_rgb(raw, rgb + size_t(y) * width * 3, width, f);
    }
  } else {  // interlaced: `raw` holds the whole image, every pass refines it in place
    for (int p = 0; p < passes; ++p)
      for (int y = 0; y < height; ++y) png_read_row(r.png, raw + size_t(y) * f.rowbytes, nullptr);
    for (int y = 0; y < height; ++y)
      png_row_to_rgb(raw + size_t(y) * f.rowbytes, rgb + size_t(y) * width * 3, width, f);
  }
  if (read_end) png_read_end(r.png, r.end_info);
  return true;
}

void collect_png_text(png_structp png, png_infop info, TextChunks* out) {
  png_textp text = nullptr;
  int n = 0;
  if (!info || png_get_text(png, info, &text, &n) <= 0) return;
  for (int i = 0; i < n; ++i) {
    size_t len = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
    out->emplace_back(text[i].key ? text[i].key : "",
                      std::string(text[i].text ? text[i].text : "", text[i].text ? len : 0));
  }
}

// Walks the chunk list before libpng sees it: libpng sizes some buffers from a chunk's declared
// length (a corrupt tEXt length made it allocate 2 GB), so every chunk must fit in the file.
void check_png_chunks(const uint8_t* data, size_t size, const std::string& name) {
  size_t pos = 8;
  while (pos < size) {
    if (size - pos < 12) fail(name, ": invalid PNG: file is truncated");
    const uint8_t* p = data + pos;
    uint32_t len = uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
    if (len > 0x7fffffffu) fail(name, ": invalid PNG: chunk length ", len, " at byte ", pos);
    if (size - pos - 12 < len) fail(name, ": invalid PNG: file is truncated");
    pos += 12 + size_t(len);
    if (std::memcmp(p + 4, "IEND", 4) == 0) break;
  }
}

Image decode_png(const uint8_t* data, size_t size, const std::string& name, TextChunks* text) {
  check_png_chunks(data, size, name);
  PngSource src{data, size, 0, {0}};
  PngReader r;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
  if (!r.png) fail(name, ": cannot initialise libpng");
  r.info = png_create_info_struct(r.png);
  r.end_info = png_create_info_struct(r.png);
  if (!r.info || !r.end_info) fail(name, ": cannot initialise libpng");
  png_set_read_fn(r.png, &src, png_read_from_memory);

  PngHeader h;
  if (!png_header_guarded(r, h)) fail(name, ": invalid PNG: ", src.error);
  check_image_size(h.width, h.height, name);
  PngRowFormat f;
  int passes = 1;
  if (!png_setup_guarded(r, h, f, passes)) fail(name, ": invalid PNG: ", src.error);
  const int bps = f.bit_depth / 8;
  if (f.channels < 1 || f.channels > 4 || (f.bit_depth != 8 && f.bit_depth != 16) ||
      f.rowbytes != size_t(h.width) * f.channels * bps)
    fail(name, ": unsupported PNG pixel layout (", f.channels, " channels, ", f.bit_depth,
         " bits)");

  Image img;
  img.width = int(h.width);
  img.height = int(h.height);
  img.rgb.resize(size_t(img.width) * img.height * 3);
  std::vector<uint8_t> raw(passes > 1 ? f.rowbytes * h.height : f.rowbytes);
  if (!png_rows_guarded(r, h, f, passes, img.rgb.data(), raw.data(), text != nullptr))
    fail(name, ": invalid PNG: ", src.error);
  if (text) {
    collect_png_text(r.png, r.info, text);
    collect_png_text(r.png, r.end_info, text);
  }
  return img;
}

// ---------------------------------------------------------------------------------------------
// JPEG decode / encode

struct JpegErrors {
  jpeg_error_mgr mgr;  // first member: libjpeg hands back a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void jpeg_on_error(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings are silent (Pillow tolerates corrupt-data warnings) except for a premature end of
// data, which libjpeg papers over with grey: Pillow refuses such files ("image file is
// truncated"), and so do we (libjpeg's read-ahead also reports a missing EOI marker this way).
void jpeg_on_message(j_common_ptr c, int level) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->truncated = true;
}

void jpeg_silent_output(j_common_ptr) {}

void init_jpeg_errors(JpegErrors& e) {
  std::memset(&e, 0, sizeof e);
  jpeg_std_error(&e.mgr);
  e.mgr.error_exit = jpeg_on_error;
  e.mgr.emit_message = jpeg_on_message;
  e.mgr.output_message = jpeg_silent_output;
}

// Called by libjpeg while it reads the input; stops files with too many scans.
void jpeg_on_progress(j_common_ptr c) {
  auto* d = reinterpret_cast<j_decompress_ptr>(c);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* e = reinterpret_cast<JpegErrors*>(c->err);
    std::snprintf(e->message, sizeof e->message, "more than %d progressive scans", kMaxJpegScans);
    std::longjmp(e->jump, 1);
  }
}

struct JpegReader {
  jpeg_decompress_struct cinfo;
  JpegErrors err;
  jpeg_progress_mgr progress;
  JpegReader() {
    std::memset(&cinfo, 0, sizeof cinfo);
    std::memset(&progress, 0, sizeof progress);
    progress.progress_monitor = jpeg_on_progress;
  }
  ~JpegReader() { jpeg_destroy_decompress(&cinfo); }  // safe on a zeroed, never-created struct
};

bool jpeg_header_guarded(JpegReader& r, const uint8_t* data, size_t size) {
  if (setjmp(r.err.jump)) return false;
  r.cinfo.err = &r.err.mgr;
  jpeg_create_decompress(&r.cinfo);
  r.cinfo.mem->max_memory_to_use = kMaxJpegWorkBytes;
  r.cinfo.progress = &r.progress;
  jpeg_mem_src(&r.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&r.cinfo, TRUE);
  switch (r.cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
      r.cinfo.out_color_space = JCS_GRAYSCALE;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      r.cinfo.out_color_space = JCS_CMYK;
      break;
    default:
      r.cinfo.out_color_space = JCS_RGB;
      break;
  }
  return true;
}

// Pillow opens CMYK JPEGs as Adobe-inverted ("CMYK;I") and converts with
// R = (255-K) - (C*(255-K))/255 (rounded MULDIV255); in stored values s this is
// R = sK - muldiv255(255 - sC, sK).
uint8_t cmyk_channel_to_rgb(uint8_t stored_c, uint8_t stored_k) {
  int c = 255 - stored_c, nk = stored_k;
  int t = c * nk + 128;
  int v = nk - (((t >> 8) + t) >> 8);
  return uint8_t(std::clamp(v, 0, 255));
}

bool jpeg_pixels_guarded(JpegReader& r, uint8_t* rgb, uint8_t* row, int& components,
                         bool& truncated) {
  if (setjmp(r.err.jump)) return false;
  jpeg_start_decompress(&r.cinfo);
  components = r.cinfo.output_components;
  const int width = int(r.cinfo.output_width);
  if ((components != 1 && components != 3 && components != 4) || width != int(r.cinfo.image_width))
    return true;  // caller rejects the layout
  while (r.cinfo.output_scanline < r.cinfo.output_height) {
    uint8_t* out = rgb + size_t(r.cinfo.output_scanline) * width * 3;
    JSAMPROW rows[1] = {components == 3 ? out : row};
    if (jpeg_read_scanlines(&r.cinfo, rows, 1) != 1 || r.err.truncated) break;
    if (components == 1) {
      for (int x = 0; x < width; ++x) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = row[x];
    } else if (components == 4) {
      for (int x = 0; x < width; ++x)
        for (int ch = 0; ch < 3; ++ch)
          out[3 * x + ch] = cmyk_channel_to_rgb(row[4 * x + ch], row[4 * x + 3]);
    }
  }
  truncated = r.err.truncated || r.cinfo.output_scanline < r.cinfo.output_height;
  if (!truncated) jpeg_finish_decompress(&r.cinfo);  // reads up to EOI
  truncated = truncated || r.err.truncated;
  return true;
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  JpegReader r;
  init_jpeg_errors(r.err);
  if (!jpeg_header_guarded(r, data, size)) fail(name, ": invalid JPEG: ", r.err.message);
  check_image_size(r.cinfo.image_width, r.cinfo.image_height, name);
  Image img;
  img.width = int(r.cinfo.image_width);
  img.height = int(r.cinfo.image_height);
  img.rgb.resize(size_t(img.width) * img.height * 3);
  std::vector<uint8_t> row(size_t(img.width) * 4);
  int components = 0;
  bool truncated = false;
  if (!jpeg_pixels_guarded(r, img.rgb.data(), row.data(), components, truncated))
    fail(name, ": invalid JPEG: ", r.err.message);
  if (components != 1 && components != 3 && components != 4)
    fail(name, ": unsupported JPEG with ", components, " components");
  if (truncated) fail(name, ": JPEG file is truncated");
  return img;
}

// ---------------------------------------------------------------------------------------------
// Writing through a temporary file

std::string lower_extension(const std::string& path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// Owns a temporary file next to the destination; removes it unless commit() renamed it.
class TempFile {
 public:
  explicit TempFile(const std::string& dest) : dest_(dest) {
    std::string templ = dest + ".tmp-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    int fd = mkstemp(buf.data());
    if (fd < 0) fail(dest, ": cannot create temporary file: ", std::strerror(errno));
    path_ = buf.data();
    fchmod(fd, 0644);
    file_ = fdopen(fd, "wb");
    if (!file_) {
      ::close(fd);
      ::unlink(path_.c_str());
      fail(dest, ": cannot open temporary file: ", std::strerror(errno));
    }
  }
  ~TempFile() {
    if (file_) std::fclose(file_);
    if (!committed_) ::unlink(path_.c_str());
  }
  FILE* file() const { return file_; }
  void commit() {
    bool bad = std::fflush(file_) != 0 || std::ferror(file_) != 0;
    bad = (std::fclose(file_) != 0) || bad;
    file_ = nullptr;
    if (bad) fail(dest_, ": error writing image file: ", std::strerror(errno));
    if (std::rename(path_.c_str(), dest_.c_str()) != 0)
      fail(dest_, ": cannot rename temporary file into place: ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string dest_, path_;
  FILE* file_ = nullptr;
  bool committed_ = false;
};

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriter() {
    if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
  }
};

bool png_write_guarded(PngWriter& w, FILE* f, const Image& img, png_text* text, int num_text) {
  if (setjmp(png_jmpbuf(w.png))) return false;
  png_init_io(w.png, f);
  png_set_IHDR(w.png, w.info, png_uint_32(img.width), png_uint_32(img.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (num_text > 0) png_set_text(w.png, w.info, text, num_text);
  png_write_info(w.png, w.info);
  for (int y = 0; y < img.height; ++y)
    png_write_row(w.png, const_cast<png_bytep>(img.rgb.data() + size_t(y) * img.width * 3));
  png_write_end(w.png, w.info);
  return true;
}

void check_text_key(const std::string& key, const std::string& path) {
  bool ok = !key.empty() && key.size() <= 79 && key.front() != ' ' && key.back() != ' ' &&
            key.find("  ") == std::string::npos;
  for (unsigned char c : key) ok = ok && c >= 32 && c <= 126;
  if (!ok) fail(path, ": invalid PNG text key '", key, "' (1-79 printable ASCII characters)");
}

void write_png(const std::string& path, const Image& img, const TextChunks& text) {
  std::vector<png_text> chunks(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto& [key, value] = text[i];
    check_text_key(key, path);
    if (value.find('\0') != std::string::npos)
      fail(path, ": PNG text value for '", key, "' contains a NUL byte");
    bool ascii = std::all_of(value.begin(), value.end(),
                             [](char c) { return static_cast<unsigned char>(c) < 128; });
    png_text& t = chunks[i];
    std::memset(&t, 0, sizeof t);
    t.key = const_cast<char*>(key.c_str());
    t.text = const_cast<char*>(value.c_str());
    if (ascii) {
      t.compression = PNG_TEXT_COMPRESSION_NONE;
      t.text_length = value.size();
    } else {
      t.compression = PNG_ITXT_COMPRESSION_NONE;
      t.itxt_length = value.size();
    }
  }
  TempFile tmp(path);
  PngSource sink{nullptr, 0, 0, {0}};  // only its error buffer is used
  PngWriter w;
  w.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, png_on_error, png_on_warning);
  if (!w.png) fail(path, ": cannot initialise libpng");
  w.info = png_create_info_struct(w.png);
  if (!w.info) fail(path, ": cannot initialise libpng");
  if (!png_write_guarded(w, tmp.file(), img, chunks.data(), int(chunks.size())))
    fail(path, ": PNG encode failed: ", sink.error);
  tmp.commit();
}

struct JpegWriter {
  jpeg_compress_struct cinfo;
  JpegErrors err;
  JpegWriter() { std::memset(&cinfo, 0, sizeof cinfo); }
  ~JpegWriter() { jpeg_destroy_compress(&cinfo); }
};

bool jpeg_write_guarded(JpegWriter& w, FILE* f, const Image& img, int quality) {
  if (setjmp(w.err.jump)) return false;
  w.cinfo.err = &w.err.mgr;
  jpeg_create_compress(&w.cinfo);
  jpeg_stdio_dest(&w.cinfo, f);
  w.cinfo.image_width = JDIMENSION(img.width);
  w.cinfo.image_height = JDIMENSION(img.height);
  w.cinfo.input_components = 3;
  w.cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&w.cinfo);
  jpeg_set_quality(&w.cinfo, quality, TRUE);
  jpeg_start_compress(&w.cinfo, TRUE);
  while (w.cinfo.next_scanline < w.cinfo.image_height) {
    JSAMPROW row[1] = {
        const_cast<JSAMPLE*>(img.rgb.data() + size_t(w.cinfo.next_scanline) * img.width * 3)};
    jpeg_write_scanlines(&w.cinfo, row, 1);
  }
  jpeg_finish_compress(&w.cinfo);
  return true;
}

void write_jpeg(const std::string& path, const Image& img, int quality) {
  if (quality < 1 || quality > 100) fail(path, ": JPEG quality ", quality, " is not in 1..100");
  TempFile tmp(path);
  JpegWriter w;
  init_jpeg_errors(w.err);
  if (!jpeg_write_guarded(w, tmp.file(), img, quality))
    fail(path, ": JPEG encode failed: ", w.err.message);
  tmp.commit();
}

}  // namespace

Image Image::filled(int width, int height, uint8_t r, uint8_t g, uint8_t b) {
  check_image_size(width, height, "Image::filled");
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(size_t(width) * height * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = r;
    img.rgb[i + 1] = g;
    img.rgb[i + 2] = b;
  }
  return img;
}

void check_image_size(int64_t width, int64_t height, const std::string& what) {
  if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide ||
      width * height > kMaxImagePixels)
    fail(what, ": image size ", width, "x", height, " is outside the supported range (sides 1..",
         kMaxImageSide, ", at most ", kMaxImagePixels, " pixels)");
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail(name, ": image file is empty");
  if (is_png(data, size)) return decode_png(data, size, name, nullptr);
  if (is_jpeg(data, size)) return decode_jpeg(data, size, name);
  fail(name, ": unsupported image format (expected PNG or JPEG)");
}

Image read_image(const std::string& path) {
  const std::string bytes = read_file_limited(path, kMaxFileBytes, "image file");
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

TextChunks read_png_text(const std::string& path) {
  const std::string file = read_file_limited(path, kMaxFileBytes, "image file");
  const auto* bytes = reinterpret_cast<const uint8_t*>(file.data());
  if (!is_png(bytes, file.size())) fail(path, ": not a PNG file");
  TextChunks text;
  decode_png(bytes, file.size(), path, &text);
  return text;
}

void write_image(const std::string& path, const Image& img, const TextChunks& text,
                 int jpeg_quality) {
  check_image_size(img.width, img.height, path);
  if (img.rgb.size() != size_t(img.width) * img.height * 3)
    fail(path, ": image buffer holds ", img.rgb.size(), " bytes, expected ", img.width, "x",
         img.height, "x3");
  std::string ext = lower_extension(path);
  if (ext == "png") return write_png(path, img, text);
  if (ext == "jpg" || ext == "jpeg") return write_jpeg(path, img, jpeg_quality);
  fail(path, ": unsupported output extension '", ext, "' (use .png, .jpg or .jpeg)");
}

Tensor image_to_tensor_u8(const Image& img) {
  Tensor t = Tensor::empty({img.height, img.width, 3}, DType::U8);
  if (!img.rgb.empty()) std::memcpy(t.mutable_raw(), img.rgb.data(), img.rgb.size());
  return t;
}

Image image_from_tensor_u8(const Tensor& t) {
  if (t.dtype() != DType::U8 || t.ndim() != 3 || t.dim(2) != 3)
    fail("image_from_tensor_u8: expected a [H, W, 3] U8 tensor, got ", dtype_name(t.dtype()), " ",
         shape_str(t.shape()));
  check_image_size(t.dim(1), t.dim(0), "image_from_tensor_u8");
  Image img;
  img.height = int(t.dim(0));
  img.width = int(t.dim(1));
  img.rgb.assign(t.data<uint8_t>(), t.data<uint8_t>() + t.numel());
  return img;
}

}  // namespace ovis
