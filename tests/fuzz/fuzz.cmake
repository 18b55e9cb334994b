# libFuzzer targets (tests/fuzz/fuzz_<name>.cpp, seed corpus in tests/fuzz/corpus/<name>/).
# -DOVIS_FUZZ=ON (with clang++): real libFuzzer binaries, the whole build instrumented; run them
# with scripts/fuzz.sh TARGET SECONDS. Otherwise each target is linked with a standalone driver
# and CTest replays its committed corpus.
option(OVIS_FUZZ "Build libFuzzer targets (needs clang++)" OFF)
if(OVIS_FUZZ)
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
function(ovis_add_fuzz_targets)
  file(GLOB fuzz_sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.cpp)
  foreach(src ${fuzz_sources})
    get_filename_component(name ${src} NAME_WE)
    string(REGEX REPLACE "^fuzz_" "" corpus ${name})
    if(OVIS_FUZZ)
      add_executable(${name} ${src})
      target_link_options(${name} PRIVATE -fsanitize=fuzzer)
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
