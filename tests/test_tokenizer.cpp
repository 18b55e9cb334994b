// The text layer against the reference: HF tokenizers ids/decodes of the manifest's `tokenizer`
// case, the formatter's prompts and ids of the understanding and conditioning cases (spec §3).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "support/golden.hpp"
#include "text/byte_level.hpp"
#include "text/conversation.hpp"
#include "text/placeholder_ids.hpp"
#include "text/pretokenizer.hpp"
#include "text/tokenizer.hpp"
#include "text/utf8.hpp"

using namespace ovis;

namespace {

const Tokenizer& qwen() {
  static const Tokenizer t = Tokenizer::from_dir(test::fixture_dir());
  return t;
}

std::vector<int32_t> ids_of(const nlohmann::json& j) {
  return j.get<std::vector<int32_t>>();
}

// A fresh folder under the system temp dir, removed at the end of the test.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = std::filesystem::temp_directory_path() /
           (std::string("ovis_tok_") + info->name() + "_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary) << content;
    return (path / name).string();
  }
};

// A valid tokenizer.json: the 256 byte symbols plus `extra` tokens, and `merges`.
nlohmann::json tiny_tokenizer_json(const std::vector<std::string>& extra,
                                   const nlohmann::json& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b)
    vocab[byte_level::utf8_of_byte(static_cast<unsigned char>(b))] = id++;
  for (const auto& t : extra) vocab[t] = id++;
  nlohmann::json j;
  j["added_tokens"] = nlohmann::json::array(
      {{{"id", id}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}}});
  j["normalizer"] = {{"type", "NFC"}};
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  j["decoder"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  return j;
}

}  // namespace

TEST(Tokenizer, MatchesHfTokenizersOnManifestStrings) {
  const auto& items = test::manifest_case("tokenizer")["items"];
  ASSERT_GE(items.size(), 50u);
  int checked = 0;
  for (const auto& it : items) {
    const std::string text = it["text"];
    const std::vector<int32_t> ids = qwen().encode(text);
    EXPECT_EQ(ids, ids_of(it["ids_tokenizers_lib"])) << "encode of " << nlohmann::json(text);
    EXPECT_EQ(ids, ids_of(it["ids_autotokenizer"])) << "encode of " << nlohmann::json(text);
    const std::vector<int32_t> ref = ids_of(it["ids_tokenizers_lib"]);
    EXPECT_EQ(qwen().decode(ref, false), it["decode"].get<std::string>())
        << "decode of " << nlohmann::json(text);
    EXPECT_EQ(qwen().decode(ref, true), it["decode_skip_special"].get<std::string>())
        << "decode(skip_special) of " << nlohmann::json(text);
    ++checked;
  }
  EXPECT_EQ(checked, int(items.size()));
}

TEST(Tokenizer, VocabularyAndAddedTokens) {
  const Tokenizer& t = qwen();
  EXPECT_EQ(t.vocab_size(), 151669);
  ASSERT_EQ(t.added_tokens().size(), 26u);
  EXPECT_EQ(t.id_of("<|endoftext|>"), 151643);
  EXPECT_EQ(t.id_of("<|im_start|>"), 151644);
  EXPECT_EQ(t.id_of("<|im_end|>"), 151645);
  EXPECT_EQ(t.id_of("</think>"), 151668);
  EXPECT_EQ(t.token_of(9707), "Hello");
  EXPECT_EQ(t.token_of(1879), "\xC4\xA0world");  // "Ġworld"
  EXPECT_TRUE(t.is_special(151645));
  EXPECT_TRUE(t.is_special(151656));
  EXPECT_FALSE(t.is_special(151657));  // <tool_call> is added but not special
  EXPECT_FALSE(t.is_special(151667));  // <think>
  EXPECT_FALSE(t.is_special(9707));
  EXPECT_FALSE(t.find_id("no such token").has_value());
  EXPECT_THROW(t.id_of("no such token"), Error);
  EXPECT_THROW(t.token_of(151669), Error);
  EXPECT_THROW(t.token_of(-1), Error);
}

TEST(Tokenizer, AddedTokensAreAtomicAndLongestFirst) {
  const Tokenizer& t = qwen();
  // No merge across an added token, even when the surrounding text would merge.
  EXPECT_EQ(t.encode("a<|im_end|>b"), (std::vector<int32_t>{64, 151645, 65}));
  // An incomplete marker is plain text.
  const auto partial = t.encode("<|im_end|");
  EXPECT_TRUE(std::find(partial.begin(), partial.end(), 151645) == partial.end());
  // "<tool_response>" must not be read as "<tool_call>" or split.
  EXPECT_EQ(t.encode("<tool_response></tool_response>"), (std::vector<int32_t>{151665, 151666}));
}

TEST(Tokenizer, DecodeRepairsInvalidUtf8LikeHf) {
  const Tokenizer& t = qwen();
  // The token for the lone byte 0xE4 (first byte of a 3-byte CJK character).
  const int32_t e4 = t.id_of(byte_level::utf8_of_byte(0xE4));
  EXPECT_EQ(t.decode(std::vector<int32_t>{e4}), "\xEF\xBF\xBD");
  EXPECT_EQ(t.decode_bytes(std::vector<int32_t>{e4}), "\xE4");
  EXPECT_EQ(t.decode(std::vector<int32_t>{e4, 9707}), "\xEF\xBF\xBDHello");
  // Ids that name no token are skipped, as HF does.
  EXPECT_EQ(t.decode(std::vector<int32_t>{9707, -200, 999999, 1879}), "Hello world");
}

TEST(Tokenizer, Utf8LossyUsesMaximalSubparts) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8::lossy("ok"), "ok");
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98"), r);  // truncated 4-byte: one U+FFFD
  EXPECT_EQ(utf8::lossy("\xF0\x9F\x98x"), r + "x");
  EXPECT_EQ(utf8::lossy("\xC0\x80"), r + r);                  // overlong lead: one each
  EXPECT_EQ(utf8::lossy("\xED\xA0\x80"), r + r + r);          // surrogate
  EXPECT_EQ(utf8::lossy("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(utf8::lossy("\xE4\xBD\xA0"), "\xE4\xBD\xA0");
  EXPECT_TRUE(utf8::is_valid("\xE4\xBD\xA0"));
  EXPECT_FALSE(utf8::is_valid("\xE4\xBD"));
}

TEST(Tokenizer, EncodeTreatsInvalidUtf8AsReplacementChar) {
  const Tokenizer& t = qwen();
  EXPECT_EQ(t.encode("a\xFF"
                     "b"),
            t.encode("a\xEF\xBF\xBD"
                     "b"));
}

TEST(Tokenizer, PretokenizerUsesOnigurumaWhitespace) {
  // Oniguruma's \s is Unicode White_Space, which excludes U+180E (a format character since
  // Unicode 6.3); PCRE2's own \s would include it and split "!\u180E!" in three.
  RegexSplitter s(kQwenPretokenizePattern, "test");
  std::vector<std::string_view> pieces;
  s.split("!\xE1\xA0\x8E!", pieces);
  EXPECT_EQ(pieces.size(), 1u);
  pieces.clear();
  s.split(
      "a\xC2\x85\xC2\x85"
      "b",
      pieces);  // U+0085 is White_Space
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[1], "\xC2\x85");
  EXPECT_EQ(onig_to_pcre2(R"(\s+(?!\S)|[^\s\p{L}])"),
            R"([\t-\r\x{85}\p{Z}]+(?![^\t-\r\x{85}\p{Z}])|[^\t-\r\x{85}\p{Z}\p{L}])");
}

TEST(Tokenizer, LongInputsStayFast) {
  // A 100k-byte single word and a long whitespace run: the BPE merge is not quadratic and the
  // regex does not run out of JIT stack.
  const std::string word(100000, 'a');
  const auto ids = qwen().encode(word);
  EXPECT_EQ(qwen().decode(ids), word);
  const std::string spaces = std::string(50000, ' ') + "x";
  EXPECT_EQ(qwen().decode(qwen().encode(spaces)), spaces);
}

TEST(Tokenizer, StringMergesAndOwnTokenizerFile) {
  TempDir dir;
  // Merges as "a b" strings; rank order decides: "b c" (rank 0) beats "a b" (rank 1).
  const auto j = tiny_tokenizer_json({"ab", "bc", "abc", "a bc"},
                                     nlohmann::json::array({"b c", "a b", "a bc"}));
  dir.write("tokenizer.json", j.dump());
  const Tokenizer t = Tokenizer::from_dir(dir.path.string());
  EXPECT_EQ(t.vocab_size(), 261);
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{t.id_of("abc")}));
  EXPECT_EQ(t.encode("abab"), (std::vector<int32_t>{t.id_of("ab"), t.id_of("ab")}));
  EXPECT_EQ(t.encode("ab<|end|>"), (std::vector<int32_t>{t.id_of("ab"), 260}));
  EXPECT_EQ(t.decode(t.encode("abc<|end|>"), true), "abc");
}

TEST(Tokenizer, MissingFileNamesIt) {
  TempDir dir;
  try {
    Tokenizer::from_dir(dir.path.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((dir.path / "tokenizer.json").string()), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Tokenizer, MalformedFilesNameTheFile) {
  TempDir dir;
  auto expect_error = [&](const std::string& content, const std::string& needle) {
    const std::string path = dir.write("tokenizer.json", content);
    try {
      Tokenizer::from_file(path);
      ADD_FAILURE() << "expected an error for " << content.substr(0, 80);
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  expect_error("{\"model\": {\"vocab\": {", "malformed");
  expect_error("[1, 2]", "malformed");
  expect_error("{}", "model");
  expect_error(R"({"model": {"type": "WordPiece", "vocab": {}, "merges": []}})", "WordPiece");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})", "byte");
  auto bad_merge = tiny_tokenizer_json({}, nlohmann::json::array({"a zz"}));
  expect_error(bad_merge.dump(), "merges[0]");
  auto bad_merge_shape = tiny_tokenizer_json({}, nlohmann::json::array({"a b c"}));
  expect_error(bad_merge_shape.dump(), "merges");
  auto bad_norm = tiny_tokenizer_json({}, nlohmann::json::array());
  bad_norm["normalizer"] = {{"type", "Lowercase"}};
  expect_error(bad_norm.dump(), "normalizer");
  auto bad_regex = tiny_tokenizer_json({}, nlohmann::json::array());
  bad_regex["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error(bad_regex.dump(), "regex");
}

// ---- Hostile tokenizer files (issue: no crash, no runaway memory, one clear error) ----

std::string load_error(const std::string& text) {
  try {
    Tokenizer::from_json_text(text, "/m/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenizerHostile, AbsurdIdsAreErrorsNotAllocations) {
  // 48 bytes asking for a 2^30-entry table.
  EXPECT_EQ(load_error(R"({"model":{"vocab":{"a":1073741823},"merges":[]}})"),
            "/m/tokenizer.json: model.vocab.a: id 1073741823 is out of range [0, 1025] for a file "
            "of 1 tokens");
  for (const int64_t id : {int64_t(1) << 31, int64_t(1) << 62, int64_t(-1)}) {
    auto j = tiny_tokenizer_json({}, nlohmann::json::array());
    j["added_tokens"][0]["id"] = id;
    const std::string msg = load_error(j.dump());
    EXPECT_NE(msg.find("added_tokens[0].id: " + std::to_string(id) + " is out of range"),
              std::string::npos)
        << msg;
    j = tiny_tokenizer_json({}, nlohmann::json::array());
    j["model"]["vocab"]["Ā"] = id;
    EXPECT_NE(load_error(j.dump()).find("model.vocab[\"Ā\"]: id"), std::string::npos);
  }
  auto j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["model"]["vocab"]["x"] = uint64_t(18446744073709551615ull);
  EXPECT_NE(load_error(j.dump()).find("is out of range"), std::string::npos);
  // A sparse but justified id still loads (tables stay proportional to the file).
  j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["added_tokens"][0]["id"] = 600;
  EXPECT_EQ(Tokenizer::from_json_text(j.dump(), "t.json").vocab_size(), 601);
}

TEST(TokenizerHostile, WrongTypesNameTheField) {
  auto j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["model"]["vocab"]["x"] = "7";
  EXPECT_EQ(load_error(j.dump()),
            "/m/tokenizer.json: model.vocab.x: expected an integer id, got a string");
  j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["added_tokens"][0]["content"] = 5;
  EXPECT_EQ(load_error(j.dump()),
            "/m/tokenizer.json: added_tokens[0].content: expected a string, got an integer");
  j = tiny_tokenizer_json({}, nlohmann::json::array({5}));
  EXPECT_EQ(load_error(j.dump()),
            "/m/tokenizer.json: model.merges[0]: expected \"a b\" or [a, b], got an integer");
  j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["normalizer"] = "NFC";
  EXPECT_EQ(load_error(j.dump()),
            "/m/tokenizer.json: normalizer: expected an object, got a string");
  j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["pre_tokenizer"]["use_regex"] = "no";
  EXPECT_EQ(load_error(j.dump()),
            "/m/tokenizer.json: pre_tokenizer.use_regex: expected a boolean, got a string");
  j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["model"]["merges"] = nlohmann::json::object();
  EXPECT_EQ(load_error(j.dump()),
            "/m/tokenizer.json: model.merges: expected an array, got an object");
  j = tiny_tokenizer_json({}, nlohmann::json::array({"a\nb c d"}));
  const std::string msg = load_error(j.dump());
  EXPECT_NE(msg.find("'a\\x0ab c d'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(TokenizerHostile, DeepNestingStopsEarly) {
  for (size_t levels : {size_t(100000), size_t(300000)}) {
    const std::string deep =
        "{\"normalizer\":" + std::string(levels, '[') + std::string(levels, ']') + ",\"model\":{}}";
    EXPECT_EQ(load_error(deep), "/m/tokenizer.json: JSON nested deeper than 64 levels");
  }
  // Sequences inside Sequences within the JSON depth limit: the parser's own recursion is bounded.
  auto j = tiny_tokenizer_json({}, nlohmann::json::array());
  nlohmann::json pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  for (int i = 0; i < 20; ++i)
    pre = {{"type", "Sequence"}, {"pretokenizers", nlohmann::json::array({pre})}};
  j["pre_tokenizer"] = pre;
  const std::string msg = load_error(j.dump());
  EXPECT_NE(msg.find("Sequence nested deeper than 16 levels"), std::string::npos) << msg;
  // A few levels are legal.
  j["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", nlohmann::json::array(
                            {{{"type", "Sequence"}, {"pretokenizers", nlohmann::json::array()}}})}};
  EXPECT_EQ(load_error(j.dump()), "");
}

TEST(TokenizerHostile, ManyAddedTokensLoadAndMatchInLinearTime) {
  // 100k added tokens sharing a prefix (sorting a bucket on every insert was quadratic).
  auto j = tiny_tokenizer_json({}, nlohmann::json::array());
  nlohmann::json added = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i)
    added.push_back({{"id", 256 + i},
                     {"content", "<tok" + std::to_string(i) + ">"},
                     {"special", true},
                     {"normalized", false}});
  j["added_tokens"] = added;
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer t = Tokenizer::from_json_text(j.dump(), "t.json");
  EXPECT_EQ(t.encode("a<tok99999><tok1>b<tok"),
            (std::vector<int32_t>{t.id_of("a"), 256 + 99999, 257, t.id_of("b"), t.id_of("<"),
                                  t.id_of("t"), t.id_of("o"), t.id_of("k")}));
  const std::string text(20000, '<');
  EXPECT_EQ(t.encode(text).size(), 20000u);
  // Quadratic insertion took hours here; linear is seconds even under sanitizers.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 60.0);
}

TEST(TokenizerHostile, RegexWorkIsLimited) {
  // A catastrophic pattern fails with an error naming the file instead of running for hours.
  auto j = tiny_tokenizer_json({}, nlohmann::json::array());
  j["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(a|aa)+$"}}}, {"behavior", "Isolated"}};
  const Tokenizer t = Tokenizer::from_json_text(j.dump(), "/m/tokenizer.json");
  const auto t0 = std::chrono::steady_clock::now();
  try {
    t.encode(std::string(60, 'a') + "!");
    ADD_FAILURE() << "expected the match limit";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/m/tokenizer.json: pre_tokenizer regex failed"),
              std::string::npos)
        << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  // A pattern longer than the limit is refused at load.
  j["pre_tokenizer"]["pattern"]["Regex"] = std::string(100000, 'a');
  EXPECT_NE(load_error(j.dump()).find("exceeds the 65536-byte limit"), std::string::npos);
  // The real pattern handles long inputs within the limits (see LongInputsStayFast).
  EXPECT_EQ(qwen().decode(qwen().encode(std::string(300000, 'a'))), std::string(300000, 'a'));
}

// ---- Conversation formatter (spec §3.2, §3.3) ----

TEST(Conversation, UnderstandingPromptsMatchReference) {
  for (const char* name : {"und_single", "und_multi", "und_text"}) {
    SCOPED_TRACE(name);
    const auto& c = test::manifest_case(name);
    const auto& f = c["formatter"];
    ASSERT_EQ(f["generation_preface"], "");
    const FormattedPrompt p = format_understanding_prompt(qwen(), f["query"].get<std::string>());
    EXPECT_EQ(p.text, f["formatted_prompt"].get<std::string>());
    EXPECT_EQ(p.text, c["formatted_prompt"].get<std::string>());
    EXPECT_EQ(p.raw_ids, ids_of(f["raw_input_ids"]));
    EXPECT_EQ(p.input_ids, ids_of(c["input_ids_expanded"]));
    EXPECT_EQ(p.num_images(), int(c.value("images", nlohmann::json::array()).size()));
    // Greedy outputs decode to the recorded text.
    EXPECT_EQ(qwen().decode(ids_of(c["greedy_ids_generate"]), true),
              c["greedy_text"].get<std::string>());
  }
}

TEST(Conversation, AskQueryBuildsReferenceQueries) {
  EXPECT_EQ(ask_query("What is it?", 1),
            test::manifest_case("und_single")["formatter"]["query"].get<std::string>());
  EXPECT_EQ(ask_query("Describe each image.", 2),
            test::manifest_case("und_multi")["formatter"]["query"].get<std::string>());
  EXPECT_EQ(ask_query("Tell me a short story about a cat.", 0),
            test::manifest_case("und_text")["formatter"]["query"].get<std::string>());
  EXPECT_EQ(ask_query("Compare <image> and <image>.", 2), "Compare <image> and <image>.");
  EXPECT_EQ(ask_query("a\nb", 3), "Image 1: <image>\nImage 2: <image>\nImage 3: <image>\na\nb");
  EXPECT_THROW(ask_query("<image> only one", 2), Error);
  EXPECT_THROW(ask_query("<image> but no image", 0), Error);
}

TEST(Conversation, ConditioningPromptsMatchReference) {
  const auto& t2i = test::manifest_case("t2i_128x128");
  const auto& edit = test::manifest_case("edit_128x160");
  const std::string prompt = t2i["prompt"], instruction = edit["instruction"];
  int checked = 0;
  for (const auto* c : {&t2i, &edit}) {
    for (const auto& cond : (*c)["conditions"]) {
      const std::string tag = cond["tag"];
      SCOPED_TRACE((*c)["name"].get<std::string>() + "." + tag);
      const std::string query = tag == "cond_txt" ? (c == &t2i ? t2i_condition_query(prompt)
                                                               : edit_condition_query(instruction))
                                                  : unconditional_query();
      const auto& f = cond["formatter"];
      EXPECT_EQ(query, f["query"].get<std::string>());
      ASSERT_TRUE(f["generation_preface"].is_null());
      const FormattedPrompt p = format_condition_prompt(qwen(), query);
      EXPECT_EQ(p.text, f["formatted_prompt"].get<std::string>());
      EXPECT_EQ(p.raw_ids, ids_of(f["raw_input_ids"]));
      EXPECT_EQ(p.input_ids, ids_of(cond["input_ids_expanded"]));
      EXPECT_EQ(p.num_images(), 1);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 5);
}

TEST(Conversation, EditInstructionIsStrippedLikePython) {
  EXPECT_EQ(edit_condition_query(" \t add a hat.\n\xE3\x80\x80"), "<image>\nadd a hat.");
  EXPECT_EQ(edit_condition_query("\xE2\x80\x8B"
                                 "x"),
            "<image>\n\xE2\x80\x8B"
            "x");  // ZWSP stays
}

TEST(Conversation, ImageMarkersNeverMergeWithNeighbours) {
  const auto ids = tokenize_with_image_markers(qwen(), "a<image>b<image>");
  EXPECT_EQ(ids, (std::vector<int32_t>{64, kImageTokenId, 65, kImageTokenId}));
  EXPECT_EQ(expand_image_placeholders(ids),
            (std::vector<int32_t>{64, kImageStartId, kImageAtomId, kImageEndId, 65, kImageStartId,
                                  kImageAtomId, kImageEndId}));
  EXPECT_EQ(tokenize_with_image_markers(qwen(), "<video>x")[0], kVideoTokenId);
  EXPECT_THROW(expand_image_placeholders(std::vector<int32_t>{kVideoTokenId}), Error);
}

TEST(Conversation, MultiTurnClosesEveryTurnButTheOpenOne) {
  const FormattedPrompt p = format_conversation(
      qwen(), {{Role::kUser, "Hi"}, {Role::kAssistant, "Hello"}, {Role::kUser, "Bye"}},
      std::string());
  EXPECT_EQ(p.text,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello"
            "<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n<think>\n\n"
            "</think>\n\n");
  EXPECT_EQ(p.raw_ids, p.input_ids);
  const FormattedPrompt closed = format_conversation(qwen(), {{Role::kSystem, "S"}}, std::nullopt);
  EXPECT_EQ(closed.text, "<|im_start|>system\nS<|im_end|>\n");
}
