// Pipeline::chat (multi-turn conversations with images, stop strings, finish reasons, usage),
// cancellation of every task, and tasks nested in another task's progress callback (what the
// server does to answer chats between denoising steps). Model runs use the tiny fixture in F32.
#include <gtest/gtest.h>

#include "ovis/ovis.hpp"
#include "support/golden.hpp"
#include "text/stop_strings.hpp"

using namespace ovis;

namespace {

ChatPart text(const std::string& t) {
  return ChatPart{t, {}};
}
ChatPart image(int w = 4, int h = 4) {
  return ChatPart{{}, Image::filled(w, h, 10, 20, 30)};
}
ChatMessage msg(ChatRole role, std::vector<ChatPart> parts) {
  return {role, std::move(parts)};
}

constexpr const char* kAssistantOpen = "<|im_start|>assistant\n<think>\n\n</think>\n\n";

TEST(ChatPrompt, OneUserMessageOfImagesThenTextFormatsLikeAsk) {
  EXPECT_EQ(format_chat_prompt({msg(ChatRole::User, {image(), text("What is it?")})}),
            std::string("<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n") + kAssistantOpen);
  EXPECT_EQ(format_chat_prompt({msg(ChatRole::User, {image(), image(), text("Compare.")})}),
            std::string("<|im_start|>user\nImage 1: <image>\nImage 2: <image>\nCompare."
                        "<|im_end|>\n") +
                kAssistantOpen);
  // Markers typed into the question place the images, as in `ovis ask -p "... <image> ..."`.
  EXPECT_EQ(format_chat_prompt({msg(ChatRole::User, {image(), text("Is <image> a cat?")})}),
            std::string("<|im_start|>user\nIs <image> a cat?<|im_end|>\n") + kAssistantOpen);
  EXPECT_EQ(format_chat_prompt({msg(ChatRole::User, {text("Hi")})}),
            std::string("<|im_start|>user\nHi<|im_end|>\n") + kAssistantOpen);
}

TEST(ChatPrompt, MultiTurnWithSystemAndAssistantTurns) {
  const std::string p = format_chat_prompt({msg(ChatRole::System, {text("Be brief.")}),
                                            msg(ChatRole::User, {image(), text("What is it?")}),
                                            msg(ChatRole::Assistant, {text("A cat.")}),
                                            msg(ChatRole::User, {text("What colour?")})});
  EXPECT_EQ(p, std::string("<|im_start|>system\nBe brief.<|im_end|>\n"
                           "<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n"
                           "<|im_start|>assistant\n<think>\n\n</think>\n\nA cat.<|im_end|>\n"
                           "<|im_start|>user\nWhat colour?<|im_end|>\n") +
                   kAssistantOpen);
}

TEST(ChatPrompt, InterleavedPartsKeepTheirOrder) {
  EXPECT_EQ(format_chat_prompt({msg(
                ChatRole::User, {text("Left:"), image(), text("Right:"), image(), text("Same?")})}),
            std::string("<|im_start|>user\nLeft:\n<image>\nRight:\n<image>\nSame?<|im_end|>\n") +
                kAssistantOpen);
  EXPECT_EQ(format_chat_prompt({msg(ChatRole::User, {text("a"), text("b"), image()})}),
            std::string("<|im_start|>user\na\nb\n<image>\n<|im_end|>\n") + kAssistantOpen);
}

TEST(ChatPrompt, RefusesConversationsTheFormatCannotHold) {
  EXPECT_THROW(format_chat_prompt({}), Error);
  EXPECT_THROW(
      format_chat_prompt({msg(ChatRole::User, {text("q")}), msg(ChatRole::Assistant, {text("a")})}),
      Error);
  EXPECT_THROW(
      format_chat_prompt({msg(ChatRole::Assistant, {image()}), msg(ChatRole::User, {text("q")})}),
      Error);
  EXPECT_THROW(format_chat_prompt({msg(ChatRole::User, {image(), text("<image> and <image>")})}),
               Error);
  EXPECT_THROW(format_chat_prompt({msg(ChatRole::User, {text("<image>")})}), Error);
  EXPECT_THROW(format_chat_prompt({msg(ChatRole::User, {text("see <image>"), image()})}), Error);
  try {
    format_chat_prompt({msg(ChatRole::User, {text("x")}), msg(ChatRole::System, {image()}),
                        msg(ChatRole::User, {text("y")})});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("message 2"), std::string::npos) << e.what();
  }
}

TEST(StopStrings, FindsTheFirstStopAndHoldsBackPossibleStarts) {
  StopScan s = scan_stop_strings("hello world", {"wor", "lo"});
  EXPECT_TRUE(s.stopped);
  EXPECT_EQ(s.safe_length, 3u);  // "hel": "lo" comes first
  s = scan_stop_strings("hello wo", {"world"});
  EXPECT_FALSE(s.stopped);
  EXPECT_EQ(s.safe_length, 6u);  // "wo" may start "world"
  s = scan_stop_strings("hello", {"xyz", ""});
  EXPECT_FALSE(s.stopped);
  EXPECT_EQ(s.safe_length, 5u);
  s = scan_stop_strings("aaa", {"aab"});
  EXPECT_EQ(s.safe_length, 1u);  // "aa" may start "aab"
  s = scan_stop_strings("", {"a"});
  EXPECT_EQ(s.safe_length, 0u);
}

class ChatModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pipe_ = Pipeline::load(test::fixture_dir(), {.precision = Precision::F32}).release();
  }
  static void TearDownTestSuite() { delete pipe_; }
  static Image cat() { return read_image(test::fixture_path("inputs/cat.png")); }
  static Pipeline* pipe_;
};
Pipeline* ChatModel::pipe_ = nullptr;

std::vector<int32_t> golden_greedy(const std::string& name) {
  std::vector<int32_t> ids;
  for (const auto& v : test::manifest_case(name)["greedy_ids_generate"])
    ids.push_back(v.get<int32_t>());
  return ids;
}

TEST_F(ChatModel, OneUserMessageAnswersExactlyLikeAsk) {
  const nlohmann::json& c = test::manifest_case("und_single");
  ChatRequest req;
  req.messages = {msg(ChatRole::User, {ChatPart{{}, cat()}, text("What is it?")})};
  req.max_new_tokens = int(c["max_new_tokens"]);
  AskResult r = pipe_->chat(req);
  EXPECT_EQ(r.tokens, golden_greedy("und_single"));
  EXPECT_EQ(r.prompt_tokens, int(c["merged_len"]));
  EXPECT_EQ(r.text, c["greedy_text"].get<std::string>());
  EXPECT_EQ(r.finish_reason, FinishReason::Length);  // 8 tokens, no end-of-turn among them
}

TEST_F(ChatModel, StopStringEndsTheAnswerBeforeIt) {
  ChatRequest req;
  req.messages = {msg(ChatRole::User, {text("Hello")})};
  req.max_new_tokens = 12;
  const AskResult full = pipe_->chat(req);
  ASSERT_GE(full.text.size(), 8u);
  // A stop string from the middle of the greedy answer.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  const size_t cut = full.text.find(stop);
  req.stop = {stop, "never appears \x01"};
  std::string streamed;
  req.on_text = [&](std::string_view s) {
    streamed += s;
    return true;
  };
  const AskResult r = pipe_->chat(req);
  EXPECT_EQ(r.text, full.text.substr(0, cut));
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.finish_reason, FinishReason::Stop);
  EXPECT_LT(r.tokens.size(), full.tokens.size());
}

TEST_F(ChatModel, MultiTurnConversationRuns) {
  ChatRequest req;
  req.messages = {msg(ChatRole::System, {text("You are terse.")}),
                  msg(ChatRole::User, {ChatPart{{}, cat()}, text("What is it?")}),
                  msg(ChatRole::Assistant, {text("A cat.")}),
                  msg(ChatRole::User, {text("And its colour?")})};
  req.max_new_tokens = 3;
  int vision_events = 0;
  req.on_progress = [&](const ProgressEvent& e) { vision_events += e.stage == "vision"; };
  const AskResult r = pipe_->chat(req);
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_GT(r.prompt_tokens, int(test::manifest_case("und_single")["merged_len"]));
  EXPECT_EQ(vision_events, 2);  // before and after the one image
}

// AskRequest::system (ask --system) is a system turn before ask's user message.
TEST_F(ChatModel, AskWithASystemPromptIsThatChat) {
  AskRequest ask;
  ask.prompt = "What is it?";
  ask.images = {cat()};
  ask.max_new_tokens = 4;
  const AskResult plain = pipe_->ask(ask);
  ask.system = "You are terse.";
  const AskResult with_system = pipe_->ask(ask);
  ChatRequest req;
  req.messages = {msg(ChatRole::System, {text("You are terse.")}),
                  msg(ChatRole::User, {ChatPart{{}, cat()}, text("What is it?")})};
  req.max_new_tokens = 4;
  const AskResult chat = pipe_->chat(req);
  EXPECT_EQ(with_system.tokens, chat.tokens);
  EXPECT_EQ(with_system.prompt_tokens, chat.prompt_tokens);
  EXPECT_GT(with_system.prompt_tokens, plain.prompt_tokens);
}

TEST_F(ChatModel, CancelStopsDecodingAtTheNextToken) {
  ChatRequest req;
  req.messages = {msg(ChatRole::User, {text("Hello")})};
  req.max_new_tokens = 20;
  int pieces = 0;
  req.on_text = [&](std::string_view) {
    ++pieces;
    return true;
  };
  req.should_cancel = [&] { return pieces >= 2; };
  EXPECT_THROW(pipe_->chat(req), Cancelled);
  EXPECT_EQ(pieces, 2);
  AskRequest ask;
  ask.prompt = "Hello";
  ask.should_cancel = [] { return true; };
  EXPECT_THROW(pipe_->ask(ask), Cancelled);
}

TEST_F(ChatModel, CancelStopsAnImageAtTheNextDenoisingStep) {
  GenerateRequest req;
  req.prompt = "a cat";
  req.width = req.height = 32;
  req.steps = 5;
  int steps_done = 0;
  req.on_progress = [&](const ProgressEvent& e) {
    if (e.stage == "denoise") steps_done = e.step;
  };
  req.should_cancel = [&] { return steps_done >= 2; };
  EXPECT_THROW(pipe_->generate(req), Cancelled);
  EXPECT_EQ(steps_done, 2);
  EditRequest edit;
  edit.input = Image::filled(32, 32, 200, 100, 50);
  edit.instruction = "make it blue";
  edit.steps = 3;
  edit.should_cancel = [] { return true; };
  EXPECT_THROW(pipe_->edit(edit), Cancelled);
}

// The server answers chats between denoising steps on the model thread: a chat run from inside
// generate's progress callback must neither change the image nor be changed by it.
TEST_F(ChatModel, ChatNestedBetweenDenoisingStepsLeavesBothResultsUnchanged) {
  GenerateRequest gen;
  gen.prompt = "a red square";
  gen.width = gen.height = 32;
  gen.steps = 2;
  gen.seed = 3;
  const ImageResult alone = pipe_->generate(gen);

  ChatRequest chat;
  chat.messages = {msg(ChatRole::User, {ChatPart{{}, cat()}, text("What is it?")})};
  chat.max_new_tokens = 4;
  const AskResult chat_alone = pipe_->chat(chat);

  AskResult nested;
  int nested_runs = 0;
  gen.on_progress = [&](const ProgressEvent& e) {
    if (e.stage == "denoise" && e.step == 1) {
      nested = pipe_->chat(chat);
      ++nested_runs;
    }
  };
  const ImageResult with_chat = pipe_->generate(gen);
  EXPECT_EQ(nested_runs, 1);
  EXPECT_EQ(with_chat.image.rgb, alone.image.rgb);
  EXPECT_EQ(nested.tokens, chat_alone.tokens);
}

}  // namespace
