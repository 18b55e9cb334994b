// GGUF v3 reading and writing: round trips of every dtype (dims reversed on disk), and one clear
// error naming the file and the key or tensor for each kind of damaged header.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.hpp"
#include "core/quant_blocks.hpp"
#include "io/gguf.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

class GgufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ovis_gguf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& f) const { return (dir_ / f).string(); }
  fs::path dir_;
};

Tensor random_f32(const Shape& s, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.mutable_f32()[i] = d(g);
  return t;
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& p, const std::vector<uint8_t>& b) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

std::string open_error(const std::string& p) {
  try {
    GgufFile::open(p);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A small header written by hand: one string key, one tensor.
struct RawGguf {
  std::vector<uint8_t> b;
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    put(s.data(), s.size());
  }
  void put(const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    b.insert(b.end(), c, c + n);
  }
  void pad(size_t a) {
    while (b.size() % a) b.push_back(0);
  }
};

// magic, version, 1 tensor, 1 key, tensor "w" F32 [2, 3] at `offset`, `data` bytes of data.
RawGguf make_raw(uint32_t version = 3, uint32_t type = 0, uint64_t offset = 0, size_t data = 24,
                 const std::string& key = "general.architecture") {
  RawGguf r;
  r.put("GGUF", 4);
  r.u32(version);
  r.u64(1);
  r.u64(1);
  r.str(key);
  r.u32(8);
  r.str("ovis-u1");
  r.str("w");
  r.u32(2);
  r.u64(3);
  r.u64(2);
  r.u32(type);
  r.u64(offset);
  r.pad(32);
  r.b.resize(r.b.size() + data, 0);
  return r;
}

}  // namespace

TEST_F(GgufTest, RoundTripsEveryTypeWithReversedDims) {
  const Tensor a = random_f32({3, 64}, 1);
  const Tensor q8 = random_f32({5, 64}, 2).to_dtype(DType::Q8_0);
  const Tensor q4 = random_f32({2, 512}, 3).to_dtype(DType::Q4_K);
  const Tensor bf = random_f32({7}, 4).to_dtype(DType::BF16);
  const Tensor h = random_f32({2, 3, 4, 5}, 5).to_dtype(DType::F16);
  {
    GgufWriter w(path("m.gguf"));
    w.set_string("general.architecture", "ovis-u1");
    w.set_string("text", std::string("{\"x\": 1}\n\xC3\xA9"));
    w.set_f32("some.float", 0.5f);
    const std::vector<std::pair<std::string, Tensor>> ts{
        {"a", a}, {"q8", q8}, {"q4", q4}, {"bf", bf}, {"h", h}};
    for (const auto& [n, t] : ts) w.add_tensor(n, t.shape(), t.dtype());
    for (const auto& [n, t] : ts) w.write_tensor_data(t.raw(), t.nbytes());
    w.finish();
  }
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_EQ(e.path().filename(), "m.gguf") << "temporary file left behind";
  auto f = GgufFile::open(path("m.gguf"));
  EXPECT_EQ(f->header().version, 3u);
  EXPECT_EQ(f->header().alignment, 32u);
  EXPECT_EQ(*f->get_string("general.architecture"), "ovis-u1");
  EXPECT_EQ(*f->get_string("text"), std::string("{\"x\": 1}\n\xC3\xA9"));
  EXPECT_FALSE(f->get_string("missing").has_value());
  EXPECT_THROW(f->get_string("some.float"), Error);
  EXPECT_EQ(f->header().tensor_order, (std::vector<std::string>{"a", "q8", "q4", "bf", "h"}));
  for (const auto& [name, t] : std::vector<std::pair<std::string, Tensor>>{
           {"a", a}, {"q8", q8}, {"q4", q4}, {"bf", bf}, {"h", h}}) {
    const Tensor r = f->tensor(name);
    EXPECT_EQ(r.shape(), t.shape()) << name;
    EXPECT_EQ(r.dtype(), t.dtype()) << name;
    ASSERT_EQ(r.nbytes(), t.nbytes()) << name;
    EXPECT_EQ(std::memcmp(r.raw(), t.raw(), t.nbytes()), 0) << name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.raw()) % 32, 0u) << name;
    EXPECT_FALSE(r.writable());
  }
  // On disk: ne[0] is the row length (fastest dim) and ggml type ids are used.
  const auto bytes = read_bytes(path("m.gguf"));
  const std::string needle = std::string("\x02\0\0\0\0\0\0\0q8", 10);
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  ASSERT_NE(it, bytes.end());
  const uint8_t* p = &*it + needle.size();
  uint32_t nd;
  uint64_t ne0, ne1;
  uint32_t type;
  std::memcpy(&nd, p, 4);
  std::memcpy(&ne0, p + 4, 8);
  std::memcpy(&ne1, p + 12, 8);
  std::memcpy(&type, p + 20, 4);
  EXPECT_EQ(nd, 2u);
  EXPECT_EQ(ne0, 64u);
  EXPECT_EQ(ne1, 5u);
  EXPECT_EQ(type, 8u);  // GGML_TYPE_Q8_0
  uint32_t id;
  ASSERT_TRUE(ggml_type_of(DType::Q4_K, &id));
  EXPECT_EQ(id, 12u);
  ASSERT_TRUE(ggml_type_of(DType::BF16, &id));
  EXPECT_EQ(id, 30u);
}

TEST_F(GgufTest, UnfinishedWriterLeavesNothing) {
  {
    GgufWriter w(path("x.gguf"));
    w.add_tensor("a", {2, 32}, DType::F32);
    std::vector<float> v(32, 1.0f);
    w.write_tensor_data(v.data(), v.size() * 4);  // half of the tensor, then an "error"
  }
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(GgufTest, HandMadeHeaderOpens) {
  write_bytes(path("ok.gguf"), make_raw().b);
  auto f = GgufFile::open(path("ok.gguf"));
  EXPECT_EQ(f->tensor("w").shape(), (Shape{2, 3}));
  EXPECT_TRUE(is_gguf_file(path("ok.gguf")));
}

TEST_F(GgufTest, ErrorsNameTheFileAndTheField) {
  struct Case {
    std::string what;
    std::vector<uint8_t> bytes;
    std::string expect;
  };
  std::vector<Case> cases;
  {
    auto r = make_raw();
    r.b[0] = 'X';
    cases.push_back({"bad magic", r.b, "not a GGUF file (bad magic)"});
  }
  cases.push_back({"version", make_raw(2).b, "unsupported GGUF version 2"});
  cases.push_back({"unknown type", make_raw(3, 99).b, "tensor 'w' has ggml type 99"});
  cases.push_back({"unaligned", make_raw(3, 0, 4).b, "tensor 'w' data offset 4 is not aligned"});
  cases.push_back({"outside", make_raw(3, 0, 0, 8).b, "tensor 'w' data [0, +24) lies outside"});
  cases.push_back(
      {"offset beyond", make_raw(3, 0, 64).b, "tensor 'w' data [64, +24) lies outside"});
  cases.push_back({"rows not blocks", make_raw(3, 8).b, "tensor 'w' of type Q8_0 has rows of 3"});
  {
    auto r = make_raw();
    r.b.resize(40);
    cases.push_back({"truncated", r.b, "tensor count 1 is more than the file can hold"});
  }
  {
    auto r = make_raw();
    r.b.resize(90);  // inside the tensor info
    cases.push_back({"truncated info", r.b, "truncated GGUF header (tensor 'w' needs"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(0);
    r.u64(uint64_t(1) << 60);
    cases.push_back({"kv count", r.b, "metadata count"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(0);
    r.u64(1);
    r.u64(uint64_t(1) << 62);  // key length far beyond the file
    r.b.resize(r.b.size() + 16);
    cases.push_back({"string length", r.b, "truncated GGUF header (metadata key 0 needs"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(0);
    r.u64(2);
    for (int i = 0; i < 2; ++i) {
      r.str("k");
      r.u32(4);
      r.u32(7);
    }
    cases.push_back({"duplicate key", r.b, "duplicate metadata key 'k'"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(0);
    r.u64(1);
    r.str("general.alignment");
    r.u32(4);
    r.u32(24);
    cases.push_back({"alignment", r.b, "key 'general.alignment' is 24"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(0);
    r.u64(1);
    r.str("arr");
    r.u32(9);
    r.u32(4);
    r.u64(uint64_t(1) << 40);
    cases.push_back({"array length", r.b, "key 'arr' claims"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(0);
    r.u64(1);
    r.str("v");
    r.u32(77);
    cases.push_back({"value type", r.b, "key 'v' has unknown value type 77"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(2);
    r.u64(0);
    for (int i = 0; i < 2; ++i) {
      r.str("t");
      r.u32(1);
      r.u64(8);
      r.u32(0);
      r.u64(0);
    }
    r.pad(32);
    r.b.resize(r.b.size() + 32);
    cases.push_back({"duplicate tensor", r.b, "duplicate tensor 't'"});
  }
  {
    RawGguf r;
    r.put("GGUF", 4);
    r.u32(3);
    r.u64(1);
    r.u64(0);
    r.str("t");
    r.u32(5);
    r.b.resize(r.b.size() + 64);
    cases.push_back({"dims", r.b, "tensor 't' has 5 dimensions"});
  }
  int i = 0;
  for (const Case& c : cases) {
    const std::string p = path("bad" + std::to_string(i++) + ".gguf");
    write_bytes(p, c.bytes);
    const std::string err = open_error(p);
    EXPECT_NE(err.find(p + ": "), std::string::npos) << c.what << ": " << err;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << c.what;
  }
}

// Every prefix of a valid file is rejected cleanly (never read out of bounds; ASan checks it).
TEST_F(GgufTest, EveryTruncationIsAnError) {
  const auto full = make_raw().b;
  for (size_t n = 0; n + 1 < full.size(); ++n) {
    std::vector<uint8_t> b(full.begin(), full.begin() + long(n));
    EXPECT_THROW(parse_gguf_header(b.data(), b.size(), "prefix"), Error) << n;
  }
  EXPECT_NO_THROW(parse_gguf_header(full.data(), full.size(), "full"));
}
