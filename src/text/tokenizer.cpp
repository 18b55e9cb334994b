#include "text/tokenizer.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.hpp"
#include "text/added_tokens.hpp"
#include "text/bpe.hpp"
#include "text/byte_level.hpp"
#include "text/pretokenizer.hpp"
#include "text/utf8.hpp"

namespace ovis {

using nlohmann::json;

namespace {

enum TokenKind : uint8_t { kNone = 0, kVocab, kAdded, kAddedSpecial };

json parse_tokenizer_json(const std::string& text, const std::string& path) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) fail(path, ": malformed tokenizer.json: expected a JSON object");
    return j;
  } catch (const json::exception& e) {
    fail(path, ": malformed tokenizer.json: ", e.what());
  }
}

bool is_null_or_absent(const json& j, const char* key) {
  return !j.contains(key) || j[key].is_null();
}

std::string str_or(const json& j, const char* key, const std::string& def) {
  if (is_null_or_absent(j, key)) return def;
  return j[key].is_string() ? j[key].get<std::string>() : std::string("<not a string>");
}

bool bool_or(const json& j, const char* key, bool def) {
  if (is_null_or_absent(j, key)) return def;
  return j[key].is_boolean() ? j[key].get<bool>() : def;
}

// NFC is the only normaliser of spec §3.1; a Sequence holding only NFC is accepted too.
bool parse_normalizer(const json& n, const std::string& path) {
  if (n.is_null()) return false;
  const std::string type = str_or(n, "type", "");
  if (type == "NFC") return true;
  if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    bool nfc = false;
    for (const auto& sub : n["normalizers"]) nfc = parse_normalizer(sub, path) || nfc;
    return nfc;
  }
  fail(path, ": unsupported normalizer type '", type, "' (only NFC is implemented)");
}

// Collects the Split regex (if any) and checks the rest is the byte-level mapping without its
// own regex. Returns the Oniguruma pattern or "" when there is no Split.
std::string parse_pre_tokenizer(const json& p, const std::string& path) {
  if (p.is_null()) return "";
  const std::string type = str_or(p, "type", "");
  if (type == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array()) {
    std::string pattern;
    for (const auto& sub : p["pretokenizers"]) {
      std::string s = parse_pre_tokenizer(sub, path);
      if (!s.empty() && !pattern.empty())
        fail(path, ": unsupported pre_tokenizer: more than one Split");
      if (!s.empty()) pattern = std::move(s);
    }
    return pattern;
  }
  if (type == "ByteLevel") {
    if (bool_or(p, "add_prefix_space", false) || bool_or(p, "use_regex", true))
      fail(path,
           ": unsupported pre_tokenizer ByteLevel options (need add_prefix_space=false, "
           "use_regex=false)");
    return "";
  }
  if (type == "Split") {
    if (!p.contains("pattern") || !p["pattern"].is_object() || !p["pattern"].contains("Regex") ||
        !p["pattern"]["Regex"].is_string())
      fail(path, ": unsupported pre_tokenizer Split: pattern.Regex string expected");
    if (str_or(p, "behavior", "") != "Isolated" || bool_or(p, "invert", false))
      fail(path, ": unsupported pre_tokenizer Split: behavior must be Isolated, invert false");
    return p["pattern"]["Regex"].get<std::string>();
  }
  fail(path, ": unsupported pre_tokenizer type '", type, "'");
}

std::string nfc(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* norm = icu::Normalizer2::getNFCInstance(status);
  if (U_FAILURE(status)) fail("tokenizer: ICU NFC normaliser unavailable: ", u_errorName(status));
  const icu::StringPiece piece(text.data(), int32_t(text.size()));
  if (norm->isNormalizedUTF8(piece, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  std::string out;
  icu::StringByteSink<std::string> sink(&out, int32_t(text.size()));
  norm->normalizeUTF8(0, piece, sink, nullptr, status);
  if (U_FAILURE(status)) fail("tokenizer: NFC normalisation failed: ", u_errorName(status));
  return out;
}

}  // namespace

struct Tokenizer::Impl {
  std::string path;
  std::vector<std::string> id_to_token;
  std::vector<uint8_t> kind;
  std::unordered_map<std::string_view, int32_t> token_to_id;  // views into id_to_token
  std::vector<AddedTokenInfo> added;
  AddedTokenMatcher raw_added;         // normalized=false: matched before NFC
  AddedTokenMatcher normalized_added;  // normalized=true: matched after NFC
  bool nfc = false;
  std::unique_ptr<RegexSplitter> splitter;
  std::unique_ptr<ByteLevelBpe> bpe;

  void encode_normalized(std::string_view text, std::vector<int32_t>& out) const;
  void encode_plain(std::string_view text, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::encode_plain(std::string_view text, std::vector<int32_t>& out) const {
  std::vector<std::string_view> words;
  splitter->split(text, words);
  for (std::string_view w : words) bpe->encode_word(w, out);
}

void Tokenizer::Impl::encode_normalized(std::string_view raw, std::vector<int32_t>& out) const {
  const std::string valid = utf8::is_valid(raw) ? std::string(raw) : utf8::lossy(raw);
  const std::string text = nfc ? ovis::nfc(valid) : valid;
  if (normalized_added.empty()) return encode_plain(text, out);
  std::vector<AddedTokenMatcher::Piece> pieces;
  normalized_added.split(text, pieces);
  for (const auto& p : pieces) {
    if (p.id >= 0)
      out.push_back(p.id);
    else
      encode_plain(p.text, out);
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  return from_file((std::filesystem::path(dir) / "tokenizer.json").string());
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot open tokenizer file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json_text(ss.str(), path);
}

Tokenizer Tokenizer::from_json_text(const std::string& text, const std::string& path) {
  const json j = parse_tokenizer_json(text, path);
  auto impl = std::make_unique<Impl>();
  impl->path = path;

  if (is_null_or_absent(j, "model") || !j["model"].is_object())
    fail(path, ": missing field 'model'");
  const json& model = j["model"];
  const std::string model_type = str_or(model, "type", "BPE");
  if (model_type != "BPE") fail(path, ": unsupported model.type '", model_type, "' (need BPE)");
  if (!is_null_or_absent(model, "dropout") && model["dropout"] != 0 && model["dropout"] != 1)
    fail(path, ": unsupported model.dropout (BPE dropout is training-only)");
  if (bool_or(model, "byte_fallback", false)) fail(path, ": unsupported model.byte_fallback=true");
  if (!str_or(model, "continuing_subword_prefix", "").empty() ||
      !str_or(model, "end_of_word_suffix", "").empty())
    fail(path, ": unsupported model.continuing_subword_prefix/end_of_word_suffix");
  if (!model.contains("vocab") || !model["vocab"].is_object())
    fail(path, ": missing field 'model.vocab' (object)");
  if (!model.contains("merges") || !model["merges"].is_array())
    fail(path, ": missing field 'model.merges' (array)");

  // Vocabulary.
  int64_t max_id = -1;
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 30))
      fail(path, ": model.vocab['", tok, "'] is not a valid id");
    max_id = std::max(max_id, id.get<int64_t>());
  }
  const json& added = j.contains("added_tokens") && j["added_tokens"].is_array() ? j["added_tokens"]
                                                                                 : json::array();
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
        !a.contains("content") || !a["content"].is_string() || a["id"].get<int64_t>() < 0 ||
        a["id"].get<int64_t>() >= (1 << 30))
      fail(path, ": malformed entry in added_tokens (need integer id and string content)");
    max_id = std::max(max_id, a["id"].get<int64_t>());
  }
  impl->id_to_token.resize(size_t(max_id + 1));
  impl->kind.assign(size_t(max_id + 1), kNone);
  for (const auto& [tok, id] : model["vocab"].items()) {
    const auto i = size_t(id.get<int64_t>());
    if (impl->kind[i] != kNone) fail(path, ": model.vocab uses id ", i, " twice");
    impl->id_to_token[i] = tok;
    impl->kind[i] = kVocab;
  }

  // Merges: "a b" strings or [a, b] pairs. Views point into `j`, which outlives the BPE build.
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  merges.reserve(model["merges"].size());
  for (const auto& m : model["merges"]) {
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(path, ": model.merges entry '", s, "' is not two tokens separated by one space");
      merges.emplace_back(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>());
    } else {
      fail(path, ": model.merges entry must be \"a b\" or [a, b]");
    }
  }
  // token_to_id holds only the model's vocabulary while the BPE is built; added tokens follow.
  impl->token_to_id.reserve(impl->id_to_token.size() * 2);
  for (size_t i = 0; i < impl->id_to_token.size(); ++i)
    if (impl->kind[i] == kVocab) impl->token_to_id.emplace(impl->id_to_token[i], int32_t(i));
  impl->bpe = std::make_unique<ByteLevelBpe>(impl->token_to_id, merges,
                                             bool_or(model, "ignore_merges", false), path);

  impl->nfc = parse_normalizer(j.value("normalizer", json()), path);
  std::string pattern = parse_pre_tokenizer(j.value("pre_tokenizer", json()), path);
  // Without a Split in the file, fall back to the Qwen pattern of spec §3.1.
  if (pattern.empty()) pattern = kQwenPretokenizePattern;
  impl->splitter = std::make_unique<RegexSplitter>(pattern, path);
  if (!is_null_or_absent(j, "decoder") && str_or(j["decoder"], "type", "") != "ByteLevel")
    fail(path, ": unsupported decoder type '", str_or(j["decoder"], "type", ""),
         "' (need ByteLevel)");

  // Added tokens (all of them are matched atomically; spec §3.1).
  for (const auto& a : added) {
    const auto id = int32_t(a["id"].get<int64_t>());
    std::string content = a["content"].get<std::string>();
    if (content.empty()) fail(path, ": added token ", id, " has empty content");
    if (bool_or(a, "single_word", false) || bool_or(a, "lstrip", false) ||
        bool_or(a, "rstrip", false))
      fail(path, ": added token '", content, "' uses single_word/lstrip/rstrip (not implemented)");
    const bool special = bool_or(a, "special", false);
    const bool normalized = bool_or(a, "normalized", !special);
    if (impl->kind[id] == kAdded || impl->kind[id] == kAddedSpecial)
      fail(path, ": added_tokens uses id ", id, " twice");
    if (impl->kind[id] == kVocab && impl->id_to_token[id] != content)
      fail(path, ": added token '", content, "' reuses vocab id ", id, " of another token");
    if (impl->kind[id] != kVocab) impl->id_to_token[id] = content;  // keeps map keys valid
    impl->kind[id] = special ? kAddedSpecial : kAdded;
    impl->added.push_back({id, content, special});
    impl->token_to_id.insert_or_assign(impl->id_to_token[id], id);
    // Normalized added tokens are looked for in normalised text, so their text is normalised.
    if (normalized)
      impl->normalized_added.add(impl->nfc ? nfc(content) : content, id);
    else
      impl->raw_added.add(content, id);
  }

  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (impl_->raw_added.empty()) {
    impl_->encode_normalized(text, out);
    return out;
  }
  std::vector<AddedTokenMatcher::Piece> pieces;
  impl_->raw_added.split(text, pieces);
  for (const auto& p : pieces) {
    if (p.id >= 0)
      out.push_back(p.id);
    else
      impl_->encode_normalized(p.text, out);
  }
  return out;
}

std::string Tokenizer::decode_bytes(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || size_t(id) >= impl_->kind.size() || impl_->kind[id] == kNone) continue;
    if (skip_special_tokens && impl_->kind[id] == kAddedSpecial) continue;
    const std::string& tok = impl_->id_to_token[id];
    // ByteLevel decoder: map each character back to its byte; a token with any character
    // outside the byte alphabet (e.g. an added token with non-Latin text) is copied verbatim.
    const size_t mark = bytes.size();
    bool mapped = true;
    for (size_t i = 0; i < tok.size() && mapped;) {
      const int b = byte_level::byte_of_char(utf8::next(tok, i));
      mapped = b >= 0;
      bytes += char(b);
    }
    if (!mapped) {
      bytes.resize(mark);
      bytes += tok;
    }
  }
  return bytes;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return utf8::lossy(decode_bytes(ids, skip_special_tokens));
}

std::optional<int32_t> Tokenizer::find_id(std::string_view token) const {
  auto it = impl_->token_to_id.find(token);
  if (it == impl_->token_to_id.end()) return std::nullopt;
  return it->second;
}

int32_t Tokenizer::id_of(std::string_view token) const {
  if (auto id = find_id(token)) return *id;
  fail(impl_->path, ": no token '", token, "' in the vocabulary or added tokens");
}

const std::string& Tokenizer::token_of(int32_t id) const {
  if (id < 0 || size_t(id) >= impl_->kind.size() || impl_->kind[id] == kNone)
    fail(impl_->path, ": no token with id ", id);
  return impl_->id_to_token[id];
}

bool Tokenizer::is_special(int32_t id) const {
  return id >= 0 && size_t(id) < impl_->kind.size() && impl_->kind[id] == kAddedSpecial;
}

int32_t Tokenizer::vocab_size() const {
  return int32_t(impl_->kind.size());
}
const std::vector<AddedTokenInfo>& Tokenizer::added_tokens() const {
  return impl_->added;
}
const std::string& Tokenizer::path() const {
  return impl_->path;
}

}  // namespace ovis
