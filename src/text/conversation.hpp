// The Qwen3 conversation formatter of the reference (`Qwen3ConversationFormatter`, spec §3.2)
// and the image placeholder expansion of `preprocess_inputs` (spec §3.3).
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/tokenizer.hpp"

namespace ovis {

enum class Role { kSystem, kUser, kAssistant };

struct Turn {
  Role role;
  std::string text;
};

struct FormattedPrompt {
  std::string text;                // the prompt string, with literal "<image>" markers
  std::vector<int32_t> raw_ids;    // one kImageTokenId (-200) per marker (spec §3.2)
  std::vector<int32_t> input_ids;  // each -200 expanded to [-301, -300, -302] (spec §3.3)
  int num_images() const;          // number of -200 in raw_ids
};

// The text of each turn as format_conversation builds it (role prefix, think block, message,
// turn end), before tokenisation.
std::vector<std::string> conversation_turn_texts(
    std::vector<Turn> turns, const std::optional<std::string>& generation_preface);

// format(conversations, generation_preface) of spec §3.2, with enable_thinking=False: when
// `generation_preface` is set, an assistant turn with that text is appended and left open (no
// "<|im_end|>\n"); every other turn is closed. Assistant turns start with the empty think block.
FormattedPrompt format_conversation(const Tokenizer& tok, std::vector<Turn> turns,
                                    const std::optional<std::string>& generation_preface);

// One user turn. Understanding uses generation_preface "" (the prompt ends with the assistant
// prefix and the empty think block); conditioning uses none (it ends with "<|im_end|>\n").
FormattedPrompt format_understanding_prompt(const Tokenizer& tok, std::string_view query);
FormattedPrompt format_condition_prompt(const Tokenizer& tok, std::string_view query);

// Tokenises `text` in chunks split on "<image>" ("<video>" if that occurs), joined with -200
// (-201), so BPE never merges across a marker (spec §3.2).
std::vector<int32_t> tokenize_with_image_markers(const Tokenizer& tok, std::string_view text);

// Replaces each -200 by [-301, -300, -302] (spec §3.3). Throws on -201: video is not supported.
std::vector<int32_t> expand_image_placeholders(std::span<const int32_t> raw_ids);

// The user query for an `ask` with `num_images` images: the prompt unchanged when it already has
// "<image>" markers (their count must equal num_images) or when there are no images; else
// "<image>\n" + prompt for one image, "Image 1: <image>\nImage 2: <image>\n..." + prompt for
// several (the reference test scripts).
std::string ask_query(std::string_view prompt, int num_images);

// Conditioning queries of the generation and edit pipelines (spec §3.2, §7.2).
std::string t2i_condition_query(std::string_view prompt);        // "<image>\nDescribe ...:{prompt}"
std::string unconditional_query();                               // "<image>\nGenerate an image."
std::string edit_condition_query(std::string_view instruction);  // "<image>\n{strip(instr)}"

}  // namespace ovis
