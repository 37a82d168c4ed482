# Driven by the ctest integration.install_and_consume (see CMakeLists.txt):
#   1. cmake --install KILN_BUILD_DIR --prefix WORK_DIR/prefix
#   2. check the installed CMake files name no path of the source or build tree
#   3. configure CONSUMER_SOURCE_DIR (the README's consumer project, kept equal
#      to the README by the readme_consumer ctest) with
#      CMAKE_PREFIX_PATH=WORK_DIR/prefix, build it, check it found Kiln under
#      the prefix, run my_app and compare what it prints with
#      CONSUMER_OUTPUT_FILE (the README's output, checked equal too)
#   Then PROFILE_CONSUMER_SOURCE_DIR, which tests what the README project does
#   not use:
#   4. configure and build it; run its app, which checks its results
#      numerically and prints "ok", while recording a profile (KILN_PROFILE_OUT)
#   5. rebuild with PROFILE set to that profile and run the app again: the sizes
#      it called now run static specializations
#   6. record again: the changed profile reruns the generator, once
#   7. run consumer_jit_app: Kiln::jit compiles a shape its NO_GENERAL package
#      lacks, checks the result, one compile, then a jit hit
# Any failure stops with a non-zero exit.
cmake_minimum_required(VERSION 3.25)

foreach(var IN ITEMS KILN_BUILD_DIR KILN_SOURCE_DIR CONSUMER_SOURCE_DIR CONSUMER_OUTPUT_FILE
                    PROFILE_CONSUMER_SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT KILN_CONFIG)
  set(KILN_CONFIG Release)
endif()

set(prefix "${WORK_DIR}/prefix")
set(readme_build "${WORK_DIR}/readme-consumer-build")
set(consumer_build "${WORK_DIR}/consumer-build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run_step what)
  message(STATUS "integration: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "integration: ${what} failed (${rc})")
  endif()
endfunction()

# A stale build tree would install stale files: say so (Ninja only, read-only check).
if(GENERATOR MATCHES "Ninja" AND MAKE_PROGRAM)
  execute_process(COMMAND "${MAKE_PROGRAM}" -C "${KILN_BUILD_DIR}" -n
    OUTPUT_VARIABLE dry_run ERROR_VARIABLE dry_run RESULT_VARIABLE rc)
  if(NOT dry_run MATCHES "no work to do")
    message(WARNING "integration: ${KILN_BUILD_DIR} is not up to date; the install "
            "below uses what is built now (run cmake --build first)")
  endif()
endif()

# 1. install
message(STATUS "integration: cmake --install ${KILN_BUILD_DIR} --prefix ${prefix}")
execute_process(
  COMMAND "${CMAKE_COMMAND}" --install "${KILN_BUILD_DIR}" --prefix "${prefix}"
          --config "${KILN_CONFIG}"
  OUTPUT_FILE "${WORK_DIR}/install.log" ERROR_VARIABLE install_err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "integration: install failed (${rc}); build every target first "
          "(cmake --build ${KILN_BUILD_DIR}):\n${install_err}")
endif()

# 2. the installed package must not point back into the source or build tree
file(GLOB_RECURSE cmake_files "${prefix}/*.cmake")
if(NOT cmake_files)
  message(FATAL_ERROR "integration: no CMake package files under ${prefix}")
endif()
foreach(f IN LISTS cmake_files)
  file(READ "${f}" text)
  foreach(tree IN ITEMS "${KILN_SOURCE_DIR}" "${KILN_BUILD_DIR}")
    string(FIND "${text}" "${tree}" at)
    if(NOT at EQUAL -1)
      message(FATAL_ERROR "integration: ${f} names ${tree}; the installed package "
              "must not depend on the build machine's tree")
    endif()
  endforeach()
endforeach()

# The consumers build against the prefix only, with this build's compilers and flags.
set(common_args
  -G "${GENERATOR}"
  "-DCMAKE_PREFIX_PATH=${prefix}"
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
  -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
  "-DCMAKE_BUILD_TYPE=${KILN_CONFIG}")
foreach(pair IN ITEMS MAKE_PROGRAM:CMAKE_MAKE_PROGRAM C_COMPILER:CMAKE_C_COMPILER
                      CXX_COMPILER:CMAKE_CXX_COMPILER C_FLAGS:CMAKE_C_FLAGS
                      CXX_FLAGS:CMAKE_CXX_FLAGS EXE_LINKER_FLAGS:CMAKE_EXE_LINKER_FLAGS
                      CXX_COMPILER_LAUNCHER:CMAKE_CXX_COMPILER_LAUNCHER)
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 from)
  list(GET pair 1 to)
  if(NOT "${${from}}" STREQUAL "")
    list(APPEND common_args "-D${to}=${${from}}")
  endif()
endforeach()

# Single-config generators put an executable at the top of the build dir.
function(find_executable out_var build_dir name)
  set(path "${build_dir}/${name}")
  if(NOT EXISTS "${path}")
    set(path "${build_dir}/${KILN_CONFIG}/${name}")
  endif()
  set(${out_var} "${path}" PARENT_SCOPE)
endfunction()

# 3. the README's consumer, as the README builds it
run_step("configure the README consumer" "${CMAKE_COMMAND}"
         -S "${CONSUMER_SOURCE_DIR}" -B "${readme_build}" ${common_args})
file(STRINGS "${readme_build}/CMakeCache.txt" kiln_dir_line REGEX "^Kiln_DIR:")
string(REGEX REPLACE "^Kiln_DIR:[A-Z]+=" "" kiln_dir "${kiln_dir_line}")
cmake_path(IS_PREFIX prefix "${kiln_dir}" NORMALIZE kiln_dir_in_prefix)
if(NOT kiln_dir_in_prefix)
  message(FATAL_ERROR "integration: the README consumer found Kiln at '${kiln_dir}', "
          "not under ${prefix}")
endif()
run_step("build the README consumer" "${CMAKE_COMMAND}" --build "${readme_build}"
         --config "${KILN_CONFIG}" --parallel 2)
find_executable(my_app "${readme_build}" my_app)
execute_process(COMMAND "${my_app}"
  OUTPUT_VARIABLE app_out ERROR_VARIABLE app_err RESULT_VARIABLE rc)
message(STATUS "integration: my_app said:\n${app_out}${app_err}")
# What the README says it prints: x = 0, 1, ..., 11 as [3, 4], y = 2x + 1,
# total = 1 + 3 + ... + 23.
file(READ "${CONSUMER_OUTPUT_FILE}" want_out)
if(NOT rc EQUAL 0 OR NOT app_out STREQUAL want_out)
  message(FATAL_ERROR "integration: my_app failed (${rc}) or printed something else than:\n"
          "${want_out}")
endif()

# 4. the profile and JIT consumer
set(configure_args
  -S "${PROFILE_CONSUMER_SOURCE_DIR}" -B "${consumer_build}" ${common_args}
  "-DKILN_EXPECTED_PREFIX=${prefix}")
run_step("configure consumer" "${CMAKE_COMMAND}" ${configure_args})
run_step("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}"
         --config "${KILN_CONFIG}" --parallel 2)

find_executable(app "${consumer_build}" consumer_app)
function(run_app what)
  execute_process(
    COMMAND "${CMAKE_COMMAND}" -E env "KILN_CACHE_DIR=${WORK_DIR}/cache" ${ARGN} "${app}"
    OUTPUT_VARIABLE app_out ERROR_VARIABLE app_err RESULT_VARIABLE rc)
  message(STATUS "integration: consumer_app (${what}) said:\n${app_out}${app_err}")
  if(NOT rc EQUAL 0 OR NOT app_out MATCHES "(^|\n)ok\n")
    message(FATAL_ERROR "integration: consumer_app (${what}) failed (${rc})")
  endif()
endfunction()
# Returns the build's output in <out_var>.
function(build_consumer what out_var)
  message(STATUS "integration: ${what}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" --build "${consumer_build}" --config "${KILN_CONFIG}" --parallel 2
    OUTPUT_VARIABLE out ERROR_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "integration: ${what} failed (${rc}):\n${out}")
  endif()
  set(${out_var} "${out}" PARENT_SCOPE)
endfunction()
set(profile "${WORK_DIR}/prod.kprof")
run_app("recording a profile" "KILN_PROFILE_OUT=${profile}")

# Both packages of the app (embedded and file) wrote the profile in turn.
file(READ "${profile}" recorded)
message(STATUS "integration: recorded profile:\n${recorded}")
foreach(rows IN ITEMS 1 16 37)
  if(NOT recorded MATCHES "(^|\n)scale_shift [0-9a-f]+ n=${rows} 2\n")
    message(FATAL_ERROR "integration: the profile has no line 'scale_shift <hash> n=${rows} 2'")
  endif()
endforeach()

# 5. precompile what the profile recorded
run_step("configure consumer with PROFILE" "${CMAKE_COMMAND}" ${configure_args}
         "-DCONSUMER_PROFILE=${profile}")
build_consumer("build consumer with PROFILE" out)
if(NOT out MATCHES "Precompiling graphs consumer_graphs")
  message(FATAL_ERROR "integration: PROFILE did not rerun the generator:\n${out}")
endif()
run_app("profiled")

# 6. a changed profile (the same shapes, counted again) reruns the generator
run_app("recording again" "KILN_PROFILE_OUT=${profile}")
build_consumer("rebuild after the profile changed" out)
if(NOT out MATCHES "Precompiling graphs consumer_graphs")
  message(FATAL_ERROR "integration: a changed PROFILE did not rerun the generator:\n${out}")
endif()
build_consumer("rebuild with nothing changed" out)
if(out MATCHES "Precompiling graphs")
  message(FATAL_ERROR "integration: the generator reran with nothing changed:\n${out}")
endif()
# 7. the fallback JIT, linked from the installed Kiln::jit
find_executable(jit_app "${consumer_build}" consumer_jit_app)
execute_process(
  COMMAND "${CMAKE_COMMAND}" -E env --unset=KILN_STANCE "${jit_app}"
  OUTPUT_VARIABLE app_out ERROR_VARIABLE app_err RESULT_VARIABLE rc)
message(STATUS "integration: consumer_jit_app said:\n${app_out}${app_err}")
if(NOT rc EQUAL 0 OR NOT app_out MATCHES "(^|\n)ok\n")
  message(FATAL_ERROR "integration: consumer_jit_app failed (${rc})")
endif()
message(STATUS "integration: ok")
