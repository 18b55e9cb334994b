// The negative ids the reference puts in token sequences where images go. They are never looked
// up in the vocabulary: the multimodal merge (spec §5) replaces them with visual embeddings.
// Values from `configuration_ovis_u1.py` (spec §3.3).
#pragma once
#include <cstdint>

namespace ovis {

inline constexpr int32_t kIgnoreId = -100;
// Sentinel the formatter emits for each literal "<image>" / "<video>" marker (spec §3.2).
inline constexpr int32_t kImageTokenId = -200;
inline constexpr int32_t kVideoTokenId = -201;
// Expansion of one kImageTokenId: [start indicator, atom, end indicator] (spec §3.3).
inline constexpr int32_t kImageAtomId = -300;
inline constexpr int32_t kImageStartId = -301;  // IMAGE_INDICATOR_IDS[0]
inline constexpr int32_t kImageEndId = -302;    // IMAGE_INDICATOR_IDS[1]

// The literal markers the formatter splits on (spec §3.2).
inline constexpr const char* kImageMarker = "<image>";
inline constexpr const char* kVideoMarker = "<video>";

}  // namespace ovis
