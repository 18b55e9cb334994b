# ctest -P script: fails if an object file of kernel variant ${ISA} defines a global or weak
# symbol outside namespace ovis::ops::cpu::kernels::${ISA}. Such a symbol (say an inline
# function from a shared header) exists in every variant, compiled for different ISAs, and the
# linker keeps one of them for all: an AVX-512 copy could then run on a CPU without AVX-512.
# Usage: cmake -DISA=avx2 -DNM=nm "-DOBJECTS=a.o;b.o" -P check_kernel_symbols.cmake
if(NOT OBJECTS)
  message(FATAL_ERROR "no object files given for variant ${ISA}")
endif()
set(bad "")
foreach(obj ${OBJECTS})
  execute_process(COMMAND ${NM} -C --defined-only ${obj} OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${obj}")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line ${lines})
    # "<address> <type> <name>"; upper-case types and u/v/w are visible to the linker.
    if(line MATCHES "^[0-9a-fA-F]* ([A-Zuvw]) (.*)$")
      set(type "${CMAKE_MATCH_1}")
      set(name "${CMAKE_MATCH_2}")
      string(FIND "${name}" "ovis::ops::cpu::kernels::${ISA}::" pos)
      # DW.ref.__gxx_personality_v0 is exception-table data, not code.
      string(FIND "${name}" "DW.ref." eh)
      if(pos EQUAL -1 AND NOT eh EQUAL 0)
        list(APPEND bad "${obj}: ${type} ${name}")
      endif()
    endif()
  endforeach()
endforeach()
if(bad)
  string(REPLACE ";" "\n  " bad "${bad}")
  message(FATAL_ERROR "kernel variant ${ISA} exports symbols outside its namespace:\n  ${bad}")
endif()
message(STATUS "kernel variant ${ISA}: all exported symbols in its namespace")
