# Writes a C++ source defining `std::string_view ovis::serve::ui_page()` over the bytes of INPUT.
# Usage: cmake -DINPUT=in.html -DOUTPUT=out.cpp -P embed_file.cmake
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){24})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by embed_file.cmake; do not edit.\n"
  "#include \"serve/ui_page.hpp\"\n\nnamespace ovis::serve {\n\nnamespace {\n"
  "const unsigned char kPage[] = {\n${bytes}\n0};\n}  // namespace\n\n"
  "std::string_view ui_page() {\n"
  "  return std::string_view(reinterpret_cast<const char*>(kPage), ${size});\n}\n\n"
  "}  // namespace ovis::serve\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
