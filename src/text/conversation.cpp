#include "text/conversation.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "text/placeholder_ids.hpp"
#include "text/utf8.hpp"

namespace ovis {

namespace {

// spec §3.2: role prefixes, turn end, and the empty think block (enable_thinking=False).
constexpr std::string_view kSystemPrefix = "<|im_start|>system\n";
constexpr std::string_view kUserPrefix = "<|im_start|>user\n";
constexpr std::string_view kAssistantPrefix = "<|im_start|>assistant\n";
constexpr std::string_view kTurnEnd = "<|im_end|>\n";
constexpr std::string_view kEmptyThink = "<think>\n\n</think>\n\n";

// spec §3.2 / §7.2: the fixed conditioning texts. No space after the colon.
constexpr std::string_view kDescribePrefix =
    "Describe the image by detailing the color, shape, size, texture, quantity, text, and "
    "spatial relationships of the objects:";
constexpr std::string_view kGenerateAnImage = "Generate an image.";

std::string_view prefix_of(Role r) {
  switch (r) {
    case Role::kSystem:
      return kSystemPrefix;
    case Role::kUser:
      return kUserPrefix;
    case Role::kAssistant:
      return kAssistantPrefix;
  }
  return kUserPrefix;
}

size_t count_occurrences(std::string_view s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string_view::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

}  // namespace

int FormattedPrompt::num_images() const {
  return int(std::count(raw_ids.begin(), raw_ids.end(), kImageTokenId));
}

std::vector<int32_t> tokenize_with_image_markers(const Tokenizer& tok, std::string_view text) {
  const bool video = text.find(kVideoMarker) != std::string_view::npos;
  const std::string_view marker = video ? kVideoMarker : kImageMarker;
  const int32_t sentinel = video ? kVideoTokenId : kImageTokenId;
  std::vector<int32_t> ids;
  size_t start = 0;
  while (true) {
    const size_t p = text.find(marker, start);
    const std::string_view chunk =
        text.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start);
    const std::vector<int32_t> part = tok.encode(chunk);
    ids.insert(ids.end(), part.begin(), part.end());
    if (p == std::string_view::npos) break;
    ids.push_back(sentinel);
    start = p + marker.size();
  }
  return ids;
}

std::vector<int32_t> expand_image_placeholders(std::span<const int32_t> raw_ids) {
  std::vector<int32_t> out;
  out.reserve(raw_ids.size() +
              2 * size_t(std::count(raw_ids.begin(), raw_ids.end(), kImageTokenId)));
  for (const int32_t id : raw_ids) {
    if (id == kImageTokenId) {
      out.insert(out.end(), {kImageStartId, kImageAtomId, kImageEndId});
    } else if (id == kVideoTokenId) {
      fail("prompt contains a \"<video>\" marker; video input is not supported");
    } else {
      out.push_back(id);
    }
  }
  return out;
}

std::vector<std::string> conversation_turn_texts(
    std::vector<Turn> turns, const std::optional<std::string>& generation_preface) {
  if (generation_preface) turns.push_back({Role::kAssistant, *generation_preface});
  std::vector<std::string> texts;
  for (size_t i = 0; i < turns.size(); ++i) {
    std::string text(prefix_of(turns[i].role));
    if (turns[i].role == Role::kAssistant) text += kEmptyThink;
    text += turns[i].text;
    const bool open_last = generation_preface && i + 1 == turns.size();
    if (!open_last) text += kTurnEnd;
    texts.push_back(std::move(text));
  }
  return texts;
}

FormattedPrompt format_conversation(const Tokenizer& tok, std::vector<Turn> turns,
                                    const std::optional<std::string>& generation_preface) {
  FormattedPrompt out;
  for (const std::string& text : conversation_turn_texts(std::move(turns), generation_preface)) {
    // Each turn is tokenised on its own (spec §3.2).
    const std::vector<int32_t> ids = tokenize_with_image_markers(tok, text);
    out.raw_ids.insert(out.raw_ids.end(), ids.begin(), ids.end());
    out.text += text;
  }
  out.input_ids = expand_image_placeholders(out.raw_ids);
  return out;
}

FormattedPrompt format_understanding_prompt(const Tokenizer& tok, std::string_view query) {
  return format_conversation(tok, {{Role::kUser, std::string(query)}}, std::string());
}

FormattedPrompt format_condition_prompt(const Tokenizer& tok, std::string_view query) {
  return format_conversation(tok, {{Role::kUser, std::string(query)}}, std::nullopt);
}

std::string ask_query(std::string_view prompt, int num_images) {
  if (num_images < 0) fail("ask: negative image count ", num_images);
  const size_t markers = count_occurrences(prompt, kImageMarker);
  if (markers > 0) {
    if (markers != size_t(num_images))
      fail("ask: the prompt has ", markers, " \"<image>\" markers but ", num_images,
           " image(s) were given");
    return std::string(prompt);
  }
  std::string q;
  if (num_images == 1) {
    q = std::string(kImageMarker) + "\n";
  } else {
    for (int i = 1; i <= num_images; ++i)
      q += "Image " + std::to_string(i) + ": " + std::string(kImageMarker) + "\n";
  }
  return q + std::string(prompt);
}

std::string t2i_condition_query(std::string_view prompt) {
  return std::string(kImageMarker) + "\n" + std::string(kDescribePrefix) + std::string(prompt);
}

std::string unconditional_query() {
  return std::string(kImageMarker) + "\n" + std::string(kGenerateAnImage);
}

std::string edit_condition_query(std::string_view instruction) {
  return std::string(kImageMarker) + "\n" + std::string(utf8::strip_py(instruction));
}

}  // namespace ovis
