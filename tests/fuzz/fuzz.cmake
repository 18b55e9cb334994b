# libFuzzer targets (tests/fuzz/fuzz_<name>.cpp, seed corpus in tests/fuzz/corpus/<name>/).
# -DOVIS_FUZZ=ON (with clang++): real libFuzzer binaries; the server's targets link only its
# request parsers, image decoding and core (no model code to compile). Run them with
# scripts/fuzz.sh TARGET SECONDS. Otherwise each target is linked with a standalone driver
# against ovis_serve and CTest replays its committed corpus.
option(OVIS_FUZZ "Build libFuzzer targets (needs clang++)" OFF)
if(OVIS_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
set(OVIS_SERVER_FUZZ_TARGETS json_request multipart data_url)
function(ovis_add_fuzz_targets)
  if(OVIS_FUZZ)
    # The chat parser checks conversations with the prompt formatter (src/text, tokenizer included).
    file(GLOB core_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/core/*.cpp
         ${CMAKE_SOURCE_DIR}/src/text/*.cpp)
    set(parsers api_error base64 data_url json_fields chat_wire image_wire request_body)
    list(TRANSFORM parsers PREPEND ${CMAKE_SOURCE_DIR}/tools/ovis/serve/)
    list(TRANSFORM parsers APPEND .cpp)
    add_library(ovis_fuzz_parsers STATIC ${parsers} ${CMAKE_SOURCE_DIR}/src/io/image.cpp
                                         ${CMAKE_SOURCE_DIR}/src/pipeline/chat_prompt.cpp
                                         ${core_sources})
    target_include_directories(ovis_fuzz_parsers PUBLIC ${CMAKE_SOURCE_DIR}/src
                               ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tools/ovis)
    target_link_libraries(ovis_fuzz_parsers PUBLIC PNG::PNG JPEG::JPEG ICU::uc ICU::i18n
                          PkgConfig::PCRE2 nlohmann_json::nlohmann_json PkgConfig::HTTPLIB)
  endif()
  file(GLOB fuzz_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.cpp)
  foreach(src ${fuzz_sources})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" corpus ${name})
    if(OVIS_FUZZ)
      add_executable(${name} ${src})
      target_link_options(${name} PRIVATE -fsanitize=fuzzer)
      if(corpus IN_LIST OVIS_SERVER_FUZZ_TARGETS)
        target_link_libraries(${name} PRIVATE ovis_fuzz_parsers)
        continue()
      endif()
    elseif(OVIS_BUILD_TESTS)
      add_executable(${name} ${src} ${CMAKE_SOURCE_DIR}/tests/fuzz/standalone_main.cpp)
      add_test(NAME ${name}.corpus
               COMMAND ${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${corpus})
    else()
      continue()
    endif()
    target_link_libraries(${name} PRIVATE ovis_serve)
  endforeach()
endfunction()
