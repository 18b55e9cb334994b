// The web UI: one self-contained HTML page (ui/index.html, with its CSS and JavaScript inline),
// compiled into the binary at build time.
#pragma once
#include <string_view>

namespace ovis::serve {

std::string_view ui_page();

}  // namespace ovis::serve
