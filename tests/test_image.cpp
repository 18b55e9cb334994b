// Image file I/O: Pillow-compatible PNG/JPEG decoding to RGB, PNG text chunks, JPEG encoding,
// and clean one-line errors (never a crash) on hostile input.
#include <gtest/gtest.h>
#include <jpeglib.h>
#include <png.h>
#include <unistd.h>

#include <cstdio>  // before jpeglib.h
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "io/image.hpp"
#include "support/golden.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "ovis_test_image_XXXXXX").string();
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  size_t entries() const { return size_t(std::distance(fs::directory_iterator(path_), {})); }

 private:
  fs::path path_;
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

Image gradient(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img.rgb[(size_t(y) * w + x) * 3];
      p[0] = uint8_t(x * 255 / std::max(1, w - 1));
      p[1] = uint8_t(y * 255 / std::max(1, h - 1));
      p[2] = uint8_t((x + y) * 255 / (w + h));
    }
  return img;
}

// Writes a PNG with libpng directly, in any colour type / bit depth (rows as PNG stores them).
struct RawPng {
  int width = 0, height = 0, color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  bool interlaced = false;
  std::vector<std::vector<uint8_t>> rows = {};
  std::vector<png_color> palette = {};
  std::vector<uint8_t> trns = {};
};

void write_raw_png(const std::string& path, const RawPng& r) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_init_io(png, f);
  png_set_IHDR(png, info, r.width, r.height, r.bit_depth, r.color_type,
               r.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!r.palette.empty()) png_set_PLTE(png, info, r.palette.data(), int(r.palette.size()));
  if (!r.trns.empty()) png_set_tRNS(png, info, r.trns.data(), int(r.trns.size()), nullptr);
  png_write_info(png, info);
  std::vector<png_bytep> ptrs;
  for (const auto& row : r.rows) ptrs.push_back(const_cast<png_bytep>(row.data()));
  png_write_image(png, ptrs.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

uint32_t crc32_png(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

void put_be32(std::vector<uint8_t>& v, uint32_t x) {
  for (int s = 24; s >= 0; s -= 8) v.push_back(uint8_t(x >> s));
}

void put_chunk(std::vector<uint8_t>& v, const char* type, const std::vector<uint8_t>& data) {
  put_be32(v, uint32_t(data.size()));
  size_t start = v.size();
  v.insert(v.end(), type, type + 4);
  v.insert(v.end(), data.begin(), data.end());
  put_be32(v, crc32_png(v.data() + start, v.size() - start));
}

// A PNG whose (valid-CRC) IHDR claims width x height, with an empty IDAT.
std::vector<uint8_t> png_with_header(uint32_t width, uint32_t height) {
  std::vector<uint8_t> v = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_be32(ihdr, width);
  put_be32(ihdr, height);
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
  put_chunk(v, "IHDR", ihdr);
  put_chunk(v, "IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  put_chunk(v, "IEND", {});
  return v;
}

// The call throws ovis::Error whose single-line message names `name`.
template <class F>
::testing::AssertionResult fails_naming(F&& f, const std::string& name) {
  try {
    f();
  } catch (const Error& e) {
    std::string msg = e.what();
    if (msg.find(name) == std::string::npos)
      return ::testing::AssertionFailure() << "message does not name " << name << ": " << msg;
    if (msg.find('\n') != std::string::npos)
      return ::testing::AssertionFailure() << "message is not one line: " << msg;
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-ovis exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw";
}

}  // namespace

TEST(ImageRead, FixturePngsDropAlpha) {
  Image cat = read_image(test::fixture_path("inputs/cat.png"));  // RGBA, alpha 255
  EXPECT_EQ(cat.width, 1024);
  EXPECT_EQ(cat.height, 704);
  EXPECT_EQ(cat.rgb.size(), size_t(1024) * 704 * 3);
  Image edit = read_image(test::fixture_path("inputs/edit_128x160_input.png"));  // RGB
  EXPECT_TRUE(test::equals_golden_u8(image_to_tensor_u8(edit), "edit_128x160.input_u8"));
  Image back = image_from_tensor_u8(image_to_tensor_u8(edit));
  EXPECT_EQ(back.rgb, edit.rgb);
}

TEST(ImageRead, ConvertsPngColourTypesLikePillow) {
  TempDir dir;
  const int w = 3, h = 2;
  {  // gray + alpha: gray replicated, alpha dropped
    RawPng r{w, h, PNG_COLOR_TYPE_GRAY_ALPHA, 8};
    r.rows = {{10, 0, 20, 128, 30, 255}, {40, 1, 50, 2, 60, 3}};
    write_raw_png(dir.file("ga.png"), r);
    Image img = read_image(dir.file("ga.png"));
    ASSERT_EQ(img.rgb.size(), 18u);
    EXPECT_EQ(img.pixel(1, 0)[0], 20);
    EXPECT_EQ(img.pixel(1, 0)[2], 20);
    EXPECT_EQ(img.pixel(2, 1)[1], 60);
  }
  {  // RGBA with transparent pixels: colour kept as stored (no compositing)
    RawPng r{w, h, PNG_COLOR_TYPE_RGBA, 8};
    r.rows = {{1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 255},
              {11, 12, 13, 0, 14, 15, 16, 0, 17, 18, 19, 0}};
    write_raw_png(dir.file("rgba.png"), r);
    Image img = read_image(dir.file("rgba.png"));
    const std::vector<uint8_t> want = {1,  2,  3,  4,  5,  6,  8,  9,  10,
                                       11, 12, 13, 14, 15, 16, 17, 18, 19};
    EXPECT_EQ(img.rgb, want);
  }
  {  // 16-bit RGB: high byte (Pillow "RGB;16B")
    RawPng r{2, 1, PNG_COLOR_TYPE_RGB, 16};
    r.rows = {{0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF, 0xFF, 0x01, 0x80, 0x00, 0x7F, 0xFF}};
    write_raw_png(dir.file("rgb16.png"), r);
    Image img = read_image(dir.file("rgb16.png"));
    const std::vector<uint8_t> want = {0x12, 0xAB, 0x00, 0xFF, 0x80, 0x7F};
    EXPECT_EQ(img.rgb, want);
  }
  {  // 16-bit gray: Pillow opens I;16 and convert('RGB') saturates at 255
    RawPng r{3, 1, PNG_COLOR_TYPE_GRAY, 16};
    r.rows = {{0x00, 0x7B, 0x01, 0x00, 0xFF, 0xFF}};
    write_raw_png(dir.file("gray16.png"), r);
    Image img = read_image(dir.file("gray16.png"));
    const std::vector<uint8_t> want = {123, 123, 123, 255, 255, 255, 255, 255, 255};
    EXPECT_EQ(img.rgb, want);
  }
  {  // 16-bit gray + alpha: high byte of the gray sample
    RawPng r{1, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 16};
    r.rows = {{0x42, 0x99, 0x00, 0x10}};
    write_raw_png(dir.file("ga16.png"), r);
    EXPECT_EQ(read_image(dir.file("ga16.png")).rgb, (std::vector<uint8_t>{0x42, 0x42, 0x42}));
  }
  {  // 2-bit gray: bit replication (0, 85, 170, 255)
    RawPng r{4, 1, PNG_COLOR_TYPE_GRAY, 2};
    r.rows = {{0b00011011}};
    write_raw_png(dir.file("gray2.png"), r);
    const std::vector<uint8_t> want = {0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255};
    EXPECT_EQ(read_image(dir.file("gray2.png")).rgb, want);
  }
  {  // 4-bit palette with tRNS: palette colours, transparency ignored
    RawPng r{3, 1, PNG_COLOR_TYPE_PALETTE, 4};
    r.palette = {{200, 100, 50}, {1, 2, 3}, {7, 8, 9}};
    r.trns = {0, 128};
    r.rows = {{0x01, 0x20}};  // indices 0, 1, 2
    write_raw_png(dir.file("pal.png"), r);
    const std::vector<uint8_t> want = {200, 100, 50, 1, 2, 3, 7, 8, 9};
    EXPECT_EQ(read_image(dir.file("pal.png")).rgb, want);
  }
  {  // interlaced RGB decodes to the same pixels
    Image g = gradient(13, 11);
    RawPng r{13, 11, PNG_COLOR_TYPE_RGB, 8, true};
    for (int y = 0; y < 11; ++y)
      r.rows.emplace_back(g.rgb.begin() + y * 39, g.rgb.begin() + (y + 1) * 39);
    write_raw_png(dir.file("adam7.png"), r);
    EXPECT_EQ(read_image(dir.file("adam7.png")).rgb, g.rgb);
  }
}

TEST(ImageWrite, PngRoundTripWithTextChunks) {
  TempDir dir;
  Image img = gradient(37, 23);
  const TextChunks text = {{"parameters", "a cute cat\nSteps: 4, Seed: 42"},
                           {"Comment", "caf\xc3\xa9 \xe7\x8c\xab"}};  // UTF-8 -> iTXt
  write_image(dir.file("out.png"), img, text);
  EXPECT_EQ(dir.entries(), 1u);  // no temporary left behind
  Image back = read_image(dir.file("out.png"));
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.rgb, img.rgb);
  EXPECT_EQ(read_png_text(dir.file("out.png")), text);
  // Overwriting an existing file replaces it.
  write_image(dir.file("out.png"), gradient(5, 4));
  EXPECT_EQ(read_image(dir.file("out.png")).width, 5);
  EXPECT_TRUE(read_png_text(dir.file("out.png")).empty());
}

TEST(ImageWrite, JpegRoundTripIsClose) {
  TempDir dir;
  Image img = gradient(64, 48);
  for (const char* name : {"out.jpg", "OUT.JPEG"}) {
    write_image(dir.file(name), img, {{"ignored", "for jpeg"}}, 95);
    Image back = read_image(dir.file(name));
    ASSERT_EQ(back.width, 64);
    ASSERT_EQ(back.height, 48);
    double sum = 0;
    int worst = 0;
    for (size_t i = 0; i < img.rgb.size(); ++i) {
      int d = std::abs(int(img.rgb[i]) - int(back.rgb[i]));
      sum += d;
      worst = std::max(worst, d);
    }
    EXPECT_LT(sum / double(img.rgb.size()), 2.0) << name;
    EXPECT_LT(worst, 40) << name;
  }
  // Lower quality still round-trips approximately and is smaller.
  write_image(dir.file("q10.jpg"), img, {}, 10);
  EXPECT_LT(fs::file_size(dir.file("q10.jpg")), fs::file_size(dir.file("out.jpg")));
}

TEST(ImageRead, CmykJpegConvertsLikePillow) {
  TempDir dir;
  const std::string path = dir.file("cmyk.jpg");
  // Constant stored (Adobe-inverted) CMYK samples: C = 255 - 205 = 50, M = Y = 0, K = 255 - 200.
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = 16;
  c.image_height = 16;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(16 * 4);
  for (int x = 0; x < 16; ++x) {
    row[4 * x] = 205;
    row[4 * x + 1] = 255;
    row[4 * x + 2] = 255;
    row[4 * x + 3] = 200;
  }
  for (int y = 0; y < 16; ++y) {
    JSAMPROW p = row.data();
    jpeg_write_scanlines(&c, &p, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
  Image img = read_image(path);
  // R = nk - C*nk/255 = 200 - 50*200/255 ~ 161; G = B = 200.
  EXPECT_NEAR(img.pixel(5, 5)[0], 161, 2);
  EXPECT_NEAR(img.pixel(5, 5)[1], 200, 2);
  EXPECT_NEAR(img.pixel(5, 5)[2], 200, 2);
}

TEST(ImageErrors, MissingEmptyGarbageFiles) {
  TempDir dir;
  const std::string missing = dir.file("does_not_exist.png");
  EXPECT_TRUE(fails_naming([&] { read_image(missing); }, missing));
  const std::string empty = dir.file("empty.png");
  write_bytes(empty, {});
  EXPECT_TRUE(fails_naming([&] { read_image(empty); }, empty));
  const std::string garbage = dir.file("garbage.jpg");
  std::vector<uint8_t> junk(1000);
  std::mt19937 rng(7);
  for (auto& b : junk) b = uint8_t(rng());
  junk[0] = 'G';
  write_bytes(garbage, junk);
  EXPECT_TRUE(fails_naming([&] { read_image(garbage); }, garbage));
  // Correct magic followed by garbage.
  junk[0] = 0x89, junk[1] = 'P', junk[2] = 'N', junk[3] = 'G', junk[4] = '\r', junk[5] = '\n',
  junk[6] = 0x1a, junk[7] = '\n';
  write_bytes(garbage, junk);
  EXPECT_TRUE(fails_naming([&] { read_image(garbage); }, garbage));
  junk[0] = 0xFF, junk[1] = 0xD8, junk[2] = 0xFF;
  write_bytes(garbage, junk);
  EXPECT_TRUE(fails_naming([&] { read_image(garbage); }, garbage));
  EXPECT_TRUE(fails_naming([&] { read_image(dir.file("")); }, dir.file("")));  // a directory
}

TEST(ImageErrors, TruncatedFiles) {
  TempDir dir;
  const std::vector<uint8_t> cat = read_bytes(test::fixture_path("inputs/cat.png"));
  ASSERT_GT(cat.size(), 100000u);
  const std::string path = dir.file("truncated.png");
  for (size_t n : {size_t(4), size_t(8), size_t(20), size_t(33), size_t(1200), size_t(1600),
                   size_t(60000), cat.size() / 2, cat.size() - 20}) {
    write_bytes(path, std::vector<uint8_t>(cat.begin(), cat.begin() + n));
    EXPECT_TRUE(fails_naming([&] { read_image(path); }, path)) << n << " bytes";
  }
  TempDir jdir;
  write_image(jdir.file("full.jpg"), gradient(40, 30));
  const std::vector<uint8_t> jpg = read_bytes(jdir.file("full.jpg"));
  const std::string jpath = jdir.file("truncated.jpg");
  for (size_t n : {size_t(3), size_t(50), jpg.size() / 2, jpg.size() - 2}) {
    write_bytes(jpath, std::vector<uint8_t>(jpg.begin(), jpg.begin() + n));
    EXPECT_TRUE(fails_naming([&] { read_image(jpath); }, jpath)) << n << " bytes";
  }
  // Like Pillow, a PNG missing only its IEND chunk still decodes (trailing chunks are optional).
  write_bytes(path, std::vector<uint8_t>(cat.begin(), cat.end() - 12));
  EXPECT_EQ(read_image(path).width, 1024);
}

TEST(ImageErrors, AbsurdDimensions) {
  TempDir dir;
  const std::string path = dir.file("huge.png");
  write_bytes(path, png_with_header(100000, 100000));  // over libpng's side limit
  EXPECT_TRUE(fails_naming([&] { read_image(path); }, path));
  write_bytes(path, png_with_header(16000, 16000));  // sides fine, pixel budget exceeded
  EXPECT_TRUE(fails_naming([&] { read_image(path); }, path));
  write_bytes(path, png_with_header(0, 10));
  EXPECT_TRUE(fails_naming([&] { read_image(path); }, path));
  write_bytes(path, png_with_header(64, 64));  // plausible size, no image data
  EXPECT_TRUE(fails_naming([&] { read_image(path); }, path));
  // A text chunk claiming 2 GB (libpng would allocate its declared length).
  std::vector<uint8_t> v = png_with_header(4, 4);
  std::vector<uint8_t> text(v.begin(), v.begin() + 33);
  put_be32(text, 0x7b00000c);
  text.insert(text.end(), {'t', 'E', 'X', 't', 'k', 0, 'v'});
  write_bytes(path, text);
  EXPECT_TRUE(fails_naming([&] { read_image(path); }, path));
  // JPEGs whose frame header claims 20000 x 20000 (side cap) or 16000 x 16000 (pixel budget).
  TempDir jdir;
  write_image(jdir.file("small.jpg"), gradient(16, 16));
  const std::vector<uint8_t> small = read_bytes(jdir.file("small.jpg"));
  for (int side : {20000, 16000}) {
    std::vector<uint8_t> jpg = small;
    bool patched = false;
    for (size_t i = 2; i + 9 < jpg.size() && !patched; ++i)
      if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {  // SOF0: FFC0 len(2) precision(1) h(2) w(2)
        jpg[i + 5] = jpg[i + 7] = uint8_t(side >> 8);
        jpg[i + 6] = jpg[i + 8] = uint8_t(side);
        patched = true;
      }
    ASSERT_TRUE(patched);
    const std::string jpath = jdir.file("huge.jpg");
    write_bytes(jpath, jpg);
    EXPECT_TRUE(fails_naming([&] { read_image(jpath); }, jpath)) << side;
  }
}

// A valid progressive grayscale JPEG with `refinements` successive-approximation passes per
// coefficient: 64 * (refinements + 1) scans.
std::vector<uint8_t> many_scan_jpeg(int refinements) {
  std::vector<jpeg_scan_info> scans;
  for (int k = 0; k < 64; ++k)
    for (int r = 0; r <= refinements; ++r) {
      jpeg_scan_info s{};
      s.comps_in_scan = 1;
      s.component_index[0] = 0;
      s.Ss = s.Se = k;
      s.Ah = r == 0 ? 0 : refinements - r + 1;
      s.Al = refinements - r;
      scans.push_back(s);
    }
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = 16;
  c.image_height = 16;
  c.input_components = 1;
  c.in_color_space = JCS_GRAYSCALE;
  jpeg_set_defaults(&c);
  c.scan_info = scans.data();
  c.num_scans = int(scans.size());
  jpeg_start_compress(&c, TRUE);
  std::vector<uint8_t> row(16);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) row[x] = uint8_t(x * 16 + y);
    JSAMPROW rows[1] = {row.data()};
    jpeg_write_scanlines(&c, rows, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<uint8_t> out(buf, buf + size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

TEST(ImageErrors, JpegScanCountIsLimited) {
  // 64 * 11 = 704 scans (8-bit JPEG allows Al <= 10): refused (a many-scan file makes libjpeg
  // re-walk the image per scan).
  const std::vector<uint8_t> many = many_scan_jpeg(10);
  try {
    decode_image(many.data(), many.size(), "scans.jpg");
    ADD_FAILURE() << "expected the scan limit";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "scans.jpg: invalid JPEG: more than 500 progressive scans");
  }
  // 64 * 4 = 256 scans: a legal (if unusual) file still decodes.
  const std::vector<uint8_t> some = many_scan_jpeg(3);
  const Image img = decode_image(some.data(), some.size(), "scans.jpg");
  EXPECT_EQ(img.width, 16);
  EXPECT_NEAR(img.pixel(3, 5)[0], 3 * 16 + 5, 3);
}

TEST(ImageErrors, CorruptBytesNeverCrash) {
  // Random single-byte corruptions must decode or throw ovis::Error, nothing else.
  TempDir dir;
  write_image(dir.file("small.png"), gradient(16, 12), {{"parameters", "x"}});
  write_image(dir.file("small.jpg"), gradient(16, 12));
  std::mt19937 rng(12345);
  for (const char* name : {"small.png", "small.jpg"}) {
    const std::vector<uint8_t> good = read_bytes(dir.file(name));
    int decoded = 0, rejected = 0;
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<uint8_t> bad = good;
      int flips = 1 + int(rng() % 3);
      for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = uint8_t(rng());
      try {
        Image img = decode_image(bad.data(), bad.size(), name);
        EXPECT_EQ(img.rgb.size(), size_t(img.width) * img.height * 3);
        ++decoded;
      } catch (const Error&) {
        ++rejected;
      }
    }
    EXPECT_EQ(decoded + rejected, 300) << name;
    EXPECT_GT(rejected, 0) << name;
    // Every 7th cut before the end marker (a PNG may lack IEND).
    const size_t tail = std::string(name).ends_with(".png") ? 12 : 0;
    for (size_t n = 0; n < good.size() - tail; n += 7)
      EXPECT_THROW(decode_image(good.data(), n, name), Error) << name << " cut at " << n;
  }
}

TEST(ImageErrors, WriteFailuresLeaveNothingBehind) {
  TempDir dir;
  Image img = gradient(8, 8);
  for (const char* name : {"out.bmp", "out", "out.png.txt", "out.webp"}) {
    const std::string path = dir.file(name);
    EXPECT_TRUE(fails_naming([&] { write_image(path, img); }, path));
  }
  const std::string png = dir.file("bad.png");
  EXPECT_TRUE(fails_naming([&] { write_image(png, img, {{"", "empty key"}}); }, png));
  EXPECT_TRUE(fails_naming([&] { write_image(png, img, {{std::string(80, 'k'), "v"}}); }, png));
  EXPECT_TRUE(fails_naming([&] { write_image(png, img, {{"k", std::string("a\0b", 3)}}); }, png));
  const std::string jpg = dir.file("bad.jpg");
  EXPECT_TRUE(fails_naming([&] { write_image(jpg, img, {}, 0); }, jpg));
  EXPECT_TRUE(fails_naming([&] { write_image(jpg, img, {}, 101); }, jpg));
  Image broken = img;
  broken.rgb.resize(10);
  EXPECT_TRUE(fails_naming([&] { write_image(png, broken); }, png));
  const std::string nodir = dir.file("no/such/dir/out.png");
  EXPECT_TRUE(fails_naming([&] { write_image(nodir, img); }, nodir));
  EXPECT_EQ(dir.entries(), 0u);
}
