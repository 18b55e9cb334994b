#include <gtest/gtest.h>

#include "core/error.hpp"
#include "io/config.hpp"
#include "io/safetensors.hpp"
#include "io/weight_binder.hpp"
#include "support/golden.hpp"

using namespace ovis;

TEST(Checkpoint, LoadsFixtureConfig) {
  ModelConfig c = load_model_config(test::fixture_dir());
  EXPECT_EQ(c.llm.hidden_size, 48);
  EXPECT_EQ(c.llm.head_dim, 16);
  EXPECT_EQ(c.dit.hidden_size, 128);
  EXPECT_EQ(c.vae.block_out_channels.size(), 4u);
}

TEST(Checkpoint, OpensShardedStore) {
  TensorStore s = TensorStore::open_dir(test::fixture_dir());
  EXPECT_EQ(s.names().size(), 427u);
  Tensor t = s.get("llm.model.embed_tokens.weight");
  EXPECT_EQ(t.dtype(), DType::BF16);
  EXPECT_EQ(t.dim(0), 151936);
}

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace {

namespace fs = std::filesystem;

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("ovis_st_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_raw(const fs::path& p, uint64_t header_len, const std::string& header,
               size_t data_bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&header_len), 8);
  out << header;
  out << std::string(data_bytes, '\0');
}

std::string open_error(const fs::path& p) {
  try {
    SafetensorsFile::open(p.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripsEveryDtype) {
  fs::path d = temp_dir("roundtrip");
  Tensor f = Tensor::from_vector({1, -2, 3.5f, 4}, {2, 2});
  write_safetensors(
      (d / "a.safetensors").string(),
      {{"f32", f}, {"bf16", f.to_dtype(DType::BF16)}, {"f16", f.to_dtype(DType::F16)}});
  auto file = SafetensorsFile::open((d / "a.safetensors").string());
  for (const char* n : {"f32", "bf16", "f16"}) {
    Tensor t = file->tensor(n).to_f32();
    EXPECT_EQ(t.shape(), (Shape{2, 2}));
    EXPECT_EQ(t.to_vector(), f.to_vector()) << n;
  }
  fs::remove_all(d);
}

TEST(Safetensors, RejectsBrokenFilesWithTheFileName) {
  fs::path d = temp_dir("broken");
  const fs::path p = d / "bad.safetensors";
  std::ofstream(p) << "abc";  // shorter than the length prefix
  EXPECT_NE(open_error(p).find("truncated"), std::string::npos);
  EXPECT_NE(open_error(p).find("bad.safetensors"), std::string::npos);

  write_raw(p, 1ull << 40, "", 0);  // absurd header length
  EXPECT_NE(open_error(p).find("exceeds"), std::string::npos);

  write_raw(p, 100, "{}", 0);  // header longer than the file
  EXPECT_NE(open_error(p).find("truncated"), std::string::npos);

  std::string h = "{not json";
  write_raw(p, h.size(), h, 0);
  EXPECT_NE(open_error(p).find("malformed"), std::string::npos);

  h = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  write_raw(p, h.size(), h, 8);  // data section too short: offsets outside the file
  EXPECT_NE(open_error(p).find("outside"), std::string::npos);

  h = R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})";
  write_raw(p, h.size(), h, 16);  // byte length disagrees with the shape
  EXPECT_NE(open_error(p).find("'w'"), std::string::npos);

  h = R"({"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}})";
  write_raw(p, h.size(), h, 16);
  EXPECT_NE(open_error(p).find("unsupported dtype"), std::string::npos);
  fs::remove_all(d);
}

TEST(Safetensors, HostileHeadersFailCleanly) {
  fs::path d = temp_dir("hostile");
  const fs::path p = d / "evil.safetensors";
  auto error_for = [&](const std::string& header, size_t data_bytes) {
    write_raw(p, header.size(), header, data_bytes);
    const std::string msg = open_error(p);
    EXPECT_NE(msg.find("evil.safetensors"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    return msg;
  };
  // Deep nesting: stopped while parsing, no tree is built.
  EXPECT_NE(error_for(std::string(1000000, '[') + std::string(1000000, ']'), 0).find("not a JSON"),
            std::string::npos);
  EXPECT_NE(error_for("{\"w\":{\"extra\":" + std::string(100000, '['), 0).find("nested deeper"),
            std::string::npos);
  // Sizes and offsets past 2^62 / 2^63: checked 64-bit arithmetic, no allocation.
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],)"
                      R"("data_offsets":[0,16]}})",
                      16)
                .find("too large"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[4611686018427387904],)"
                      R"("data_offsets":[0,16]}})",
                      16)
                .find("needs more than 2^64"),
            std::string::npos);
  EXPECT_NE(
      error_for(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,9223372036854775808]}})", 16)
          .find("outside"),
      std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0)
                .find("invalid shape"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}})", 0)
                .find("invalid shape"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8)
                .find("data_offsets"),
            std::string::npos);
  std::string rank = R"({"w":{"dtype":"U8","data_offsets":[0,1],"shape":[1)";
  for (int i = 0; i < 64; ++i) rank += ",1";
  EXPECT_NE(error_for(rank + "]}}", 1).find("more than 64 dimensions"), std::string::npos);
  // Wrong types, duplicates, metadata that is not strings.
  EXPECT_NE(
      error_for(R"({"w":{"dtype":5,"shape":[],"data_offsets":[0,4]}})", 4).find("invalid dtype"),
      std::string::npos);
  EXPECT_NE(error_for(R"({"w":[]})", 0).find("not an entry object"), std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[],"shape":[],"data_offsets":[0,4]}})", 4)
                .find("repeats"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
                      R"("w":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                      4)
                .find("twice"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"__metadata__":{"format":1}})", 0).find("__metadata__"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"w":{"dtype":"F32","shape":[]}})", 0).find("needs dtype"),
            std::string::npos);
  EXPECT_NE(error_for("{\"w\\nx\":{}}", 0).find("'w\\x0ax'"), std::string::npos);
  // Legal but unusual: metadata, an unknown member (skipped), an empty header object.
  write_raw(p, 0, "", 0);
  EXPECT_NE(open_error(p).find("malformed"), std::string::npos);
  const std::string ok = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"U8","shape":[2],)"
                         R"("data_offsets":[0,2],"extra":{"a":[1,{"b":null}]}}})";
  write_raw(p, ok.size(), ok, 2);
  auto f = SafetensorsFile::open(p.string());
  ASSERT_EQ(f->entries().size(), 1u);
  EXPECT_EQ(f->tensor("w").shape(), (Shape{2}));
  write_raw(p, 2, "{}", 0);
  EXPECT_TRUE(SafetensorsFile::open(p.string())->entries().empty());
  fs::remove_all(d);
}

TEST(Safetensors, HostileIndexFailsCleanly) {
  fs::path d = temp_dir("hostile_index");
  const fs::path index = d / "model.safetensors.index.json";
  auto error_for = [&](const std::string& content) {
    std::ofstream(index) << content;
    try {
      TensorStore::open_dir(d.string());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_for(std::string(100000, '[') + std::string(100000, ']')).find("nested deeper"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"weight_map": {"a": 5}})").find("weight_map['a'] is an integer"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"weight_map": []})").find("weight_map: expected an object"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"weight_map": {"a": "../x.safetensors"}})").find("unsafe"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"weight_map": {"a": ""}})").find("unsafe"), std::string::npos);
  // 200k distinct shard names: the first missing one is reported at once (no quadratic scan).
  std::string many = R"({"weight_map": {)";
  for (int i = 0; i < 200000; ++i) {
    const std::string n = std::to_string(i);
    many.append(i ? ",\"t" : "\"t").append(n).append("\":\"s").append(n).append("\"");
  }
  many += "}}";
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_NE(error_for(many).find("missing shard"), std::string::npos);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  fs::remove_all(d);
}

TEST(Safetensors, IndexErrorsNameTheShard) {
  fs::path d = temp_dir("index");
  std::ofstream(d / "model.safetensors.index.json")
      << R"({"weight_map":{"a":"model-00001.safetensors"}})";
  try {
    TensorStore::open_dir(d.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model-00001.safetensors"), std::string::npos) << e.what();
  }
  // The index names a tensor the shard does not hold.
  write_safetensors((d / "model-00001.safetensors").string(), {{"b", Tensor::zeros({1})}});
  try {
    TensorStore::open_dir(d.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing tensor 'a'"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
  fs::create_directories(d);
  try {
    TensorStore::open_dir(d.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos);
  }
  fs::remove_all(d);
}

TEST(Checkpoint, ConfigErrorsNameTheField) {
  fs::path d = temp_dir("config");
  std::ofstream(d / "config.json") << R"({"hidden_size": 48})";
  std::ofstream(d / "preprocessor_config.json") << "{}";
  try {
    load_model_config(d.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llm_config"), std::string::npos) << e.what();
  }
  std::ofstream(d / "config.json") << "{broken";
  try {
    load_model_config(d.string());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
  fs::remove_all(d);
}

TEST(WeightBinder, ChecksShapeAndDtype) {
  TensorStore s = TensorStore::open_dir(test::fixture_dir());
  WeightBinder wb(s);
  EXPECT_NO_THROW(wb.get("llm.model.norm.weight", {48}));
  try {
    wb.get("llm.model.norm.weight", {64});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [64]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(".safetensors"), std::string::npos) << e.what();
  }
  EXPECT_THROW(wb.get("llm.nonexistent", {1}), Error);
  EXPECT_THROW(wb.check_no_extra({"llm."}), Error);  // only one tensor was bound
}

}  // namespace
