# The one warnings setting of Kiln's own code: every library, tool, test and
# benchmark calls _Kiln_set_warnings(<target>), so a new target cannot quietly
# build with fewer warnings than the rest (kiln_compiler once built without
# -Wall -Wextra).
# A function, not an INTERFACE target: a PRIVATE link of one would land in the
# installed export set as a target that consumers must also find.
function(_Kiln_set_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra)
  endif()
endfunction()
