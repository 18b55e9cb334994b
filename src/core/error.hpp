// Errors at the edges: loaders, parsers and the CLI throw ovis::Error with one clear line
// (file, field/tensor, what was expected). Internal invariants use OVIS_ASSERT.
#pragma once
#include <sstream>
#include <string>

#include "ovis/types.hpp"  // ovis::Error

namespace ovis {

// Concatenate any streamable values into a string.
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str(args...));
}

}  // namespace ovis

#define OVIS_ASSERT(cond)                                                                         \
  do {                                                                                            \
    if (!(cond))                                                                                  \
      ::ovis::fail("internal error: assertion failed: ", #cond, " at ", __FILE__, ":", __LINE__); \
  } while (0)
