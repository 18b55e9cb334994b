// OpenAI-style conversations (ovis::ChatMessage) as the turns of the Qwen3 conversation format
// (spec §3.2), with the images in the order of their "<image>" markers.
#pragma once
#include <vector>

#include "ovis/ovis.hpp"
#include "text/conversation.hpp"

namespace ovis {

struct ChatTurns {
  std::vector<Turn> turns;
  std::vector<const Image*> images;  // point into the messages; marker order
};

// Validates and converts (see ChatMessage for the placement rule); throws ovis::Error naming the
// message ("message 2: ...") on a conversation that cannot be formatted.
ChatTurns chat_turns(const std::vector<ChatMessage>& messages);

}  // namespace ovis
