# cmake -DCXX=<compiler> -DHIDDEN_DIR=<dir> -DINCLUDE_DIRS=<a|b|...> -DSOURCE=<file.cpp> -P
# Compiles SOURCE with HIDDEN_DIR (whose flatbuffers/flatbuffers.h is an
# #error) ahead of INCLUDE_DIRS, then lists every header it reads (-M: system
# ones too) and fails when one is FlatBuffers'. Either failure says
# "FlatBuffers reached".
foreach(var IN ITEMS CXX HIDDEN_DIR INCLUDE_DIRS SOURCE)
  if(NOT ${var})
    message(FATAL_ERROR "check_no_flatbuffers.cmake: ${var} is not set")
  endif()
endforeach()

string(REPLACE "|" ";" include_dirs "${INCLUDE_DIRS}")
list(REMOVE_DUPLICATES include_dirs)
set(flags -std=c++20 "-I${HIDDEN_DIR}")
foreach(dir IN LISTS include_dirs)
  if(dir)
    list(APPEND flags "-I${dir}")
  endif()
endforeach()

execute_process(COMMAND "${CXX}" ${flags} -fsyntax-only "${SOURCE}"
  RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${SOURCE} does not compile with FlatBuffers hidden:\n${output}")
endif()

execute_process(COMMAND "${CXX}" ${flags} -M "${SOURCE}"
  RESULT_VARIABLE result OUTPUT_VARIABLE dependencies ERROR_VARIABLE errors)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${CXX} -M ${SOURCE} failed:\n${errors}")
endif()
string(REGEX MATCHALL "[^ \t\r\n\\\\]*flatbuffers/[^ \t\r\n\\\\]*" reached "${dependencies}")
if(reached)
  list(JOIN reached "\n  " reached)
  message(FATAL_ERROR "FlatBuffers reached: ${SOURCE} reads\n  ${reached}")
endif()
list(LENGTH include_dirs dir_count)
message(STATUS "${SOURCE}: compiles with FlatBuffers hidden; no FlatBuffers header among its "
               "dependencies (${dir_count} include directories)")
