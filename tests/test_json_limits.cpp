// Bounded JSON parsing and typed field access (io/json_limits, io/json_field): the limits hold
// while parsing, parsing stays linear for any shape of input, and every error is one line naming
// the source and the field.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.hpp"
#include "io/checked_int.hpp"
#include "io/json_field.hpp"
#include "io/json_limits.hpp"

using namespace ovis;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string nested(size_t levels, char open = '[', char close = ']') {
  return std::string(levels, open) + std::string(levels, close);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

const JsonLimits kSmall{1 << 20, 8, 1 << 20};

TEST(JsonLimits, DepthIsLimitedWhileParsing) {
  EXPECT_NO_THROW(parse_json(nested(8), "a.json", kSmall));
  const std::string msg = error_of([] { parse_json(nested(9), "a.json", kSmall); });
  EXPECT_EQ(msg, "a.json: JSON nested deeper than 8 levels");
  // Objects count like arrays; 10^6 levels stop at the limit, in a fraction of a second.
  std::string deep_objects;
  for (int i = 0; i < 9; ++i) deep_objects += "{\"k\":";
  deep_objects += "0" + std::string(9, '}');
  EXPECT_NE(error_of([&] { parse_json(deep_objects, "o.json", kSmall); }).find("deeper"),
            std::string::npos);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string million = nested(1000000);
  EXPECT_NE(error_of([&] {
              parse_json(million, "m.json", {4u << 20, 64, 64u << 20});
            }).find("deeper"),
            std::string::npos);
  EXPECT_LT(seconds_since(t0), 30.0);
}

TEST(JsonLimits, TreeMemoryAndInputSizeAreLimited) {
  // 100k empty objects: 300 KB of text, several MB as a tree.
  std::string many = "[";
  for (int i = 0; i < 100000; ++i) many += i ? ",{}" : "{}";
  many += "]";
  const std::string msg = error_of([&] { parse_json(many, "t.json", kSmall); });
  EXPECT_NE(msg.find("t.json: JSON too large"), std::string::npos) << msg;
  EXPECT_NE(error_of([] {
              parse_json(std::string(100, ' '), "s.json", {64, 8, 1 << 20});
            }).find("s.json: 100 bytes exceed the 64-byte limit"),
            std::string::npos);
  // Within the limits the same input parses, and its size stays within the estimate.
  const JsonLimits big{1 << 20, 8, 64u << 20};
  EXPECT_EQ(parse_json(many, "t.json", big).size(), 100000u);
}

TEST(JsonLimits, ParsingIsLinearForAnyShape) {
  // nlohmann's callback parser rescans a parent's children after each object: quadratic, 80k
  // objects took 7 s, so 400k would take minutes. The bounded builder takes well under a second
  // (the bound leaves room for sanitizers and a busy machine).
  const JsonLimits roomy{64u << 20, 16, 1u << 30};
  for (const char* item : {"{}", "[]", "{\"a\":{}}", "0", "\"x\""}) {
    std::string s = "[";
    for (int i = 0; i < 400000; ++i) (s += i ? "," : "") += item;
    s += "]";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(parse_json(s, "x.json", roomy).size(), 400000u) << item;
    EXPECT_LT(seconds_since(t0), 30.0) << item;
  }
}

TEST(JsonLimits, ValuesAndDuplicateKeysLikeNlohmann) {
  const auto j = parse_json(R"({"a": [1, -2, 3.5, "s", true, null], "b": {"c": {}}, "a2": 1,
                               "a2": 2})",
                            "v.json", kSmall);
  EXPECT_EQ(j, nlohmann::json::parse(R"({"a": [1, -2, 3.5, "s", true, null], "b": {"c": {}},
                                         "a2": 2})"));
  EXPECT_EQ(parse_json("7", "v.json", kSmall), 7);
}

TEST(JsonLimits, MalformedInputNamesTheSource) {
  for (const char* bad : {"", "{", "[1,]", "{\"a\" 1}", "1e999", "[1] x", "\"\xff\""}) {
    const std::string msg = error_of([&] { parse_json(bad, "bad.json", kSmall); });
    EXPECT_EQ(msg.rfind("bad.json: malformed JSON: ", 0), 0u) << bad << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(JsonLimits, FilesAreSizeCheckedBeforeReading) {
  const fs::path dir = fs::temp_directory_path() / ("ovis_jl_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string big = (dir / "big.json").string();
  std::ofstream(big) << "[" << std::string(2 << 20, ' ') << "]";
  EXPECT_NE(error_of([&] { read_json_file(big, kSmall); }).find("exceeds the 1048576-byte limit"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_json_file(dir.string(), kSmall); }).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              read_json_file((dir / "none.json").string(), kSmall);
            }).find("none.json: cannot open"),
            std::string::npos);
  // A named pipe or a device is refused at once (no blocking open, no endless read).
  const std::string fifo = (dir / "fifo.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(error_of([&] { read_json_file(fifo, kSmall); }).find("not a regular file"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_json_file("/dev/zero", kSmall); }).find("not a regular file"),
            std::string::npos);
  const std::string ok = (dir / "ok.json").string();
  std::ofstream(ok) << R"({"x": [1]})";
  EXPECT_EQ(read_json_file(ok, kSmall)["x"][0], 1);
  fs::remove_all(dir);
}

TEST(JsonField, TypeAndRangeErrorsNameFileAndPath) {
  const std::string file = "config.json";
  const auto j = nlohmann::json::parse(
      R"({"g": {"axes_dim": [16, "x", 56], "n": 2147483648, "f": 0.5, "neg": -3, "zero": 0,
          "huge": 18446744073709551615, "odd key\n": {"v": true}}})");
  const JsonField root(j, file);
  EXPECT_EQ(error_of([&] { root["g"]["axes_dim"].at(1).integer(0, 100); }),
            "config.json: g.axes_dim[1]: expected an integer, got a string");
  EXPECT_EQ(error_of([&] { root["g"]["n"].integer(1, 1 << 20); }),
            "config.json: g.n: 2147483648 is out of range [1, 1048576]");
  EXPECT_EQ(error_of([&] { root["g"]["huge"].integer(0, INT64_MAX); }),
            "config.json: g.huge: 18446744073709551615 is out of range [0, 9223372036854775807]");
  EXPECT_EQ(error_of([&] { root["g"]["neg"].integer(0, 10); }),
            "config.json: g.neg: -3 is out of range [0, 10]");
  // A non-negative literal is stored unsigned: the lower bound must hold for it too (found by
  // fuzz_config: a head count of 0 reached a division).
  EXPECT_EQ(error_of([&] { root["g"]["zero"].integer(1, 10); }),
            "config.json: g.zero: 0 is out of range [1, 10]");
  EXPECT_EQ(error_of([&] { root["g"]["f"].integer(0, 10); }),
            "config.json: g.f: expected an integer, got a fractional number");
  EXPECT_EQ(error_of([&] { root["g"]["missing"]; }), "config.json: missing field 'g.missing'");
  EXPECT_EQ(error_of([&] { root["g"]["axes_dim"]["k"]; }),
            "config.json: g.axes_dim: expected an object, got an array");
  EXPECT_EQ(error_of([&] { root["g"]["axes_dim"].at(7); }),
            "config.json: g.axes_dim: has 3 elements, element 7 is missing");
  EXPECT_EQ(error_of([&] { root["g"]["odd key\n"]["v"].string(); }),
            "config.json: g[\"odd key\\x0a\"].v: expected a string, got a boolean");
  EXPECT_EQ(error_of([&] { root["g"]["f"].number(1.0, 2.0); }),
            "config.json: g.f: 0.5 is out of range [1, 2]");
  EXPECT_DOUBLE_EQ(root["g"]["n"].number(0, 1e10), 2147483648.0);
  EXPECT_EQ(root["g"]["axes_dim"].at(2).integer(0, 100), 56);
  EXPECT_TRUE(root["g"].has("f"));
  EXPECT_FALSE(root["g"].has("nothing"));
  EXPECT_FALSE(root["g"]["f"].has("f"));  // not an object
}

TEST(JsonField, QuotingKeepsMessagesOnOneLine) {
  EXPECT_EQ(quote_for_error("a'b\\c\nd"), "'a\\'b\\\\c\\x0ad'");
  const std::string long_text(1000, 'x');
  EXPECT_LT(quote_for_error(long_text).size(), 220u);
  EXPECT_EQ(json_path_key("", "plain_Key9"), "plain_Key9");
  EXPECT_EQ(json_path_key("a", "Ġworld"), "a[\"Ġworld\"]");
  EXPECT_EQ(json_path_index("a", 3), "a[3]");
}

TEST(CheckedInt, OverflowIsReported) {
  EXPECT_EQ(checked_add(INT64_MAX - 1, 1), INT64_MAX);
  EXPECT_FALSE(checked_add(INT64_MAX, 1));
  EXPECT_EQ(checked_mul(int64_t(1) << 31, int64_t(1) << 31), int64_t(1) << 62);
  EXPECT_FALSE(checked_mul(int64_t(1) << 62, 2));
  EXPECT_FALSE(checked_mul_u64(uint64_t(1) << 32, uint64_t(1) << 32));
}

}  // namespace
