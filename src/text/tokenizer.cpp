#include "text/tokenizer.hpp"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.hpp"
#include "io/json_field.hpp"
#include "io/json_limits.hpp"
#include "io/read_file.hpp"
#include "text/added_tokens.hpp"
#include "text/bpe.hpp"
#include "text/byte_level.hpp"
#include "text/pretokenizer.hpp"
#include "text/utf8.hpp"

namespace ovis {

using nlohmann::json;

namespace {

enum TokenKind : uint8_t { kNone = 0, kVocab, kAdded, kAddedSpecial };

// Sequences nested in Sequences: real files use one level; the limit bounds the recursion below.
constexpr int kMaxSequenceNesting = 16;

// Ids must lie below twice the number of tokens the file holds (plus this margin): vocabularies
// are dense in practice, and the id tables are sized by the largest id.
constexpr int64_t kIdMargin = 1024;

std::string type_of(const JsonField& f) {
  f.object();
  return f.has("type") ? f["type"].string() : std::string();
}

void check_nesting(const JsonField& f, int nesting) {
  if (nesting >= kMaxSequenceNesting)
    f.fail("Sequence nested deeper than ", kMaxSequenceNesting, " levels");
}

bool bool_or(const JsonField& f, const char* key, bool def) {
  return f.has(key) ? f[key].boolean() : def;
}

std::string str_or(const JsonField& f, const char* key, const std::string& def) {
  return f.has(key) ? f[key].string() : def;
}

// NFC is the only normaliser of spec §3.1; a Sequence holding only NFC is accepted too.
bool parse_normalizer(const JsonField& n, int nesting) {
  const std::string type = type_of(n);
  if (type == "NFC") return true;
  if (type == "Sequence" && n.has("normalizers")) {
    check_nesting(n, nesting);
    const JsonField list = n["normalizers"];
    bool nfc = false;
    for (size_t k = 0; k < list.array().size(); ++k)
      nfc = parse_normalizer(list.at(k), nesting + 1) || nfc;
    return nfc;
  }
  n.fail("unsupported normalizer type ", quote_for_error(type), " (only NFC is implemented)");
}

// Collects the Split regex (if any) and checks the rest is the byte-level mapping without its
// own regex. Returns the Oniguruma pattern or "" when there is no Split.
std::string parse_pre_tokenizer(const JsonField& p, int nesting) {
  const std::string type = type_of(p);
  if (type == "Sequence" && p.has("pretokenizers")) {
    check_nesting(p, nesting);
    const JsonField list = p["pretokenizers"];
    std::string pattern;
    for (size_t k = 0; k < list.array().size(); ++k) {
      std::string s = parse_pre_tokenizer(list.at(k), nesting + 1);
      if (!s.empty() && !pattern.empty()) p.fail("unsupported pre_tokenizer: more than one Split");
      if (!s.empty()) pattern = std::move(s);
    }
    return pattern;
  }
  if (type == "ByteLevel") {
    if (bool_or(p, "add_prefix_space", false) || bool_or(p, "use_regex", true))
      p.fail(
          "unsupported pre_tokenizer ByteLevel options (need add_prefix_space=false, "
          "use_regex=false)");
    return "";
  }
  if (type == "Split") {
    if (!p.has("pattern") || !p["pattern"].has("Regex"))
      p.fail("unsupported pre_tokenizer Split: pattern.Regex string expected");
    if (str_or(p, "behavior", "") != "Isolated" || bool_or(p, "invert", false))
      p.fail("unsupported pre_tokenizer Split: behavior must be Isolated, invert false");
    return p["pattern"]["Regex"].string();
  }
  p.fail("unsupported pre_tokenizer type ", quote_for_error(type));
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
  const std::string text =
      read_file_limited(path, kTokenizerJsonLimits.max_bytes, "tokenizer file");
  return from_json_text(text, path);
}

Tokenizer Tokenizer::from_json_text(std::string_view text, const std::string& path) {
  const json j = parse_json(text, path, kTokenizerJsonLimits);
  if (!j.is_object()) fail(path, ": malformed tokenizer.json: expected a JSON object");
  const JsonField root(j, path);
  auto impl = std::make_unique<Impl>();
  impl->path = path;

  const JsonField model = root["model"];
  model.object();
  const std::string model_type = str_or(model, "type", "BPE");
  if (model_type != "BPE")
    model["type"].fail("unsupported model type ", quote_for_error(model_type), " (need BPE)");
  if (model.has("dropout")) {
    const double dropout = model["dropout"].number(0.0, 1.0);
    if (dropout != 0 && dropout != 1)
      model["dropout"].fail("unsupported (BPE dropout is training-only)");
  }
  if (bool_or(model, "byte_fallback", false)) model["byte_fallback"].fail("unsupported value true");
  if (!str_or(model, "continuing_subword_prefix", "").empty() ||
      !str_or(model, "end_of_word_suffix", "").empty())
    model.fail("unsupported continuing_subword_prefix/end_of_word_suffix");
  const JsonField vocab_field = model["vocab"];
  const json& vocab = vocab_field.object();
  const json& merges_json = model["merges"].array();
  static const json kNoTokens = json::array();
  const json& added = root.has("added_tokens") ? root["added_tokens"].array() : kNoTokens;

  // Ids: the tables below are sized by the largest id, so it must be justified by the number of
  // tokens actually in the file.
  const int64_t entries = int64_t(vocab.size() + added.size());
  const int64_t id_limit = 2 * entries + kIdMargin;
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer())
      fail(path, ": ", json_path_key(vocab_field.path(), it.key()),
           ": expected an integer id, got ", json_kind(it.value()));
    const int64_t id = it.value().is_number_unsigned() && it.value().get<uint64_t>() > INT64_MAX
                           ? INT64_MAX
                           : it.value().get<int64_t>();
    if (id < 0 || id >= id_limit)
      fail(path, ": ", json_path_key(vocab_field.path(), it.key()), ": id ", id,
           " is out of range [0, ", id_limit - 1, "] for a file of ", entries, " tokens");
    max_id = std::max(max_id, id);
  }
  for (size_t k = 0; k < added.size(); ++k) {
    const JsonField a = root["added_tokens"].at(k);
    a["content"].string();
    max_id = std::max(max_id, a["id"].integer(0, id_limit - 1));
  }
  impl->id_to_token.resize(size_t(max_id + 1));
  impl->kind.assign(size_t(max_id + 1), kNone);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const auto i = size_t(it.value().get<int64_t>());
    if (impl->kind[i] != kNone) fail(path, ": model.vocab uses id ", i, " twice");
    impl->id_to_token[i] = it.key();
    impl->kind[i] = kVocab;
  }

  // Merges: "a b" strings or [a, b] pairs. Views point into `j`, which outlives the BPE build.
  std::vector<std::pair<std::string_view, std::string_view>> merges;
  merges.reserve(merges_json.size());
  for (size_t r = 0; r < merges_json.size(); ++r) {
    const json& m = merges_json[r];
    if (m.is_string()) {
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        fail(path, ": model.merges[", r, "]: ", quote_for_error(s),
             " is not two tokens separated by one space");
      merges.emplace_back(std::string_view(s).substr(0, sp), std::string_view(s).substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get_ref<const std::string&>(), m[1].get_ref<const std::string&>());
    } else {
      fail(path, ": model.merges[", r, "]: expected \"a b\" or [a, b], got ", json_kind(m));
    }
  }
  // token_to_id holds only the model's vocabulary while the BPE is built; added tokens follow.
  impl->token_to_id.reserve(impl->id_to_token.size() * 2);
  for (size_t i = 0; i < impl->id_to_token.size(); ++i)
    if (impl->kind[i] == kVocab) impl->token_to_id.emplace(impl->id_to_token[i], int32_t(i));
  impl->bpe = std::make_unique<ByteLevelBpe>(impl->token_to_id, merges,
                                             bool_or(model, "ignore_merges", false), path);

  impl->nfc = root.has("normalizer") && parse_normalizer(root["normalizer"], 0);
  std::string pattern =
      root.has("pre_tokenizer") ? parse_pre_tokenizer(root["pre_tokenizer"], 0) : std::string();
  // Without a Split in the file, fall back to the Qwen pattern of spec §3.1.
  if (pattern.empty()) pattern = kQwenPretokenizePattern;
  impl->splitter = std::make_unique<RegexSplitter>(pattern, path);
  if (root.has("decoder") && type_of(root["decoder"]) != "ByteLevel")
    root["decoder"].fail("unsupported decoder type ", quote_for_error(type_of(root["decoder"])),
                         " (need ByteLevel)");

  // Added tokens (all of them are matched atomically; spec §3.1).
  for (size_t k = 0; k < added.size(); ++k) {
    const JsonField a = root["added_tokens"].at(k);
    const auto id = int32_t(a["id"].integer(0, max_id));
    const std::string& content = a["content"].string();
    if (content.empty()) a["content"].fail("added token ", id, " has empty content");
    if (bool_or(a, "single_word", false) || bool_or(a, "lstrip", false) ||
        bool_or(a, "rstrip", false))
      a.fail("added token ", quote_for_error(content),
             " uses single_word/lstrip/rstrip (not implemented)");
    const bool special = bool_or(a, "special", false);
    const bool normalized = bool_or(a, "normalized", !special);
    if (impl->kind[id] == kAdded || impl->kind[id] == kAddedSpecial)
      a["id"].fail("added_tokens uses id ", id, " twice");
    if (impl->kind[id] == kVocab && impl->id_to_token[id] != content)
      a.fail("added token ", quote_for_error(content), " reuses vocab id ", id,
             " of another token");
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
