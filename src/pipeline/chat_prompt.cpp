#include "pipeline/chat_prompt.hpp"

#include "core/error.hpp"
#include "text/placeholder_ids.hpp"

namespace ovis {

namespace {

Role role_of(ChatRole r) {
  switch (r) {
    case ChatRole::System:
      return Role::kSystem;
    case ChatRole::User:
      return Role::kUser;
    case ChatRole::Assistant:
      return Role::kAssistant;
  }
  fail("chat: unknown message role ", int(r));
}

size_t count_markers(const std::string& s) {
  const std::string marker = kImageMarker;
  size_t n = 0;
  for (size_t p = s.find(marker); p != std::string::npos; p = s.find(marker, p + marker.size()))
    ++n;
  return n;
}

// The message text with "<image>" where its images go (ChatMessage's placement rule).
std::string message_text(const ChatMessage& m, size_t index) {
  size_t images = 0, texts = 0;
  bool image_after_text = false;
  for (const ChatPart& p : m.content) {
    if (p.is_image()) {
      ++images;
      image_after_text = image_after_text || texts > 0;
    } else {
      ++texts;
    }
  }
  if (images > 0 && m.role != ChatRole::User)
    fail("message ", index + 1, ": only user messages may hold images");
  std::string text;
  if (!image_after_text) {
    for (const ChatPart& p : m.content) {
      if (p.is_image()) continue;
      if (!text.empty()) text += "\n";
      text += p.text;
    }
    // Markers typed into the text are counted by ask_query against the images.
    const size_t typed = count_markers(text);
    if (typed > 0 && typed != images)
      fail("message ", index + 1, ": the text has ", typed, " \"<image>\" markers but ", images,
           " image(s) were given");
    return images == 0 ? text : ask_query(text, int(images));
  }
  for (size_t i = 0; i < m.content.size(); ++i) {
    const ChatPart& p = m.content[i];
    if (p.is_image()) {
      text += std::string(kImageMarker) + "\n";
    } else {
      text += p.text;
      if (i + 1 < m.content.size()) text += "\n";
    }
  }
  if (count_markers(text) != images)
    fail("message ", index + 1,
         ": its text holds \"<image>\" markers of its own; write them as "
         "image parts");
  return text;
}

}  // namespace

ChatTurns chat_turns(const std::vector<ChatMessage>& messages) {
  if (messages.empty()) fail("chat: no messages");
  if (messages.back().role != ChatRole::User)
    fail("message ", messages.size(), ": the conversation must end with a user message");
  ChatTurns out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    out.turns.push_back({role_of(m.role), message_text(m, i)});
    for (const ChatPart& p : m.content)
      if (p.is_image()) out.images.push_back(&p.image);
  }
  return out;
}

std::string format_chat_prompt(const std::vector<ChatMessage>& messages) {
  std::string text;
  for (const std::string& t : conversation_turn_texts(chat_turns(messages).turns, std::string()))
    text += t;
  return text;
}

}  // namespace ovis
