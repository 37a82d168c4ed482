# add_precompiled_graphs(): build-time compilation of KILN_GRAPH sources into a
# package that a static library embeds.
#
#   add_precompiled_graphs(<name>
#     GRAPHS  <sources...>        C++ sources with KILN_GRAPH(...) declarations
#     TARGETS <targets...>        cpu:<level> (cpu:x86-64, cpu:x86-64-v3) or cuda:sm_<NN>
#     [PACKAGE <file>]            also write the package here (relative: current binary dir)
#     [NAMESPACE <ns>]            C++ namespace of the generated header; default <name>
#     [PROFILE <file.kprof>...]   shapes recorded in production (KILN_PROFILE_OUT; relative:
#                                 current source dir): each recorded shape that fits its
#                                 graph becomes a static specialization (docs/profile.md)
#     [TAG <string>]              user tag, part of every kernel key
#     [GRAPH_TARGETS <graph> <t1,t2,...>]...
#                                 build <graph> only for these targets (one comma-
#                                 separated list, each one of TARGETS); repeatable, or
#                                 several pairs after one keyword. Other graphs get every
#                                 target. A graph's declaration may narrow it too
#                                 (kiln::graph_targets): it gets what both allow. A call
#                                 on a device none of its targets runs on fails
#                                 (docs/runtime.md). A graph name no GRAPHS source
#                                 declares fails the build (the generator checks it).
#     [SIGN_KEY <file.key>]       sign the package with this secret key (`kiln keygen`;
#                                 relative: current source dir). It must exist at configure
#                                 time; the package then opens where its .pub is trusted
#                                 (OpenOptions::trusted_keys, KILN_TRUSTED_KEYS). Keep the
#                                 key out of the source tree (docs/package-format.md).
#     [NO_GENERAL])               no general specialization: each graph with symbols
#                                 gets only its hot and PROFILE shapes, and any other
#                                 shape misses (the fallback JIT compiles it, docs/jit.md)
#
# Op budgets: a graph with more ops than KILN_CUDA_OP_BUDGET (default 1000) is
# left off the cuda: targets, one above KILN_CPU_OP_BUDGET (default 50000) off
# the cpu: targets, with a build warning naming its op count (nvcc took about a
# minute and 1.2 GB on one 1,000-op kernel, four minutes and 3.9 GB on 2,000),
# unless GRAPH_TARGETS or its declaration names the target for it: then it is
# built, also with a warning. A graph left with no target fails the build. 0 means
# no budget.
#
# Creates:
#   <name>              STATIC library: <name>.cpp + <name>_embed.S (the package,
#                       embedded with .incbin). PUBLIC include dir holds <name>.h;
#                       PUBLIC link Kiln::runtime.
#   _kiln_gen_<name>    the generator executable (<name>.generator): GRAPHS linked
#                       with Kiln::gen_main, run at build time.
#   With PACKAGE, a copy step (copy_if_different) whose output <file> is a source
#   of <name>, so building the library writes it.
# The generator reruns when a PROFILE file changes; its outputs change only
# when the shapes do (counts alone do not), so with Ninja nothing else rebuilds.
# Generated files go to ${CMAKE_CURRENT_BINARY_DIR}/<name>.kiln_out/ (<name>.kiln,
# .h, .cpp, _embed.S, .d; the generator's own ninja build under work/). Generator
# runs share a one-slot Ninja job pool (kiln_generator), since each runs its own
# parallel ninja.
# Properties on <name>: KILN_PACKAGE_FILE (the package in the output directory) and,
# with PACKAGE, KILN_PACKAGE (the copy).
#
# Variables read (set by Kiln's top-level CMakeLists.txt in-tree, or by
# KilnConfig.cmake when installed): KILN_CLANGXX_EXECUTABLE (cpu: targets),
# KILN_NVCC_EXECUTABLE (cuda: targets), KILN_NINJA_EXECUTABLE.
# Optional: KILN_GENERATOR_JOBS (how many compiles each generator's own ninja runs
# at once, passed as --jobs; default: ninja's, about one per core; lower it when
# large kernels run out of memory), KILN_CPU_OP_BUDGET and KILN_CUDA_OP_BUDGET
# (above, passed as --op-budget), CMAKE_CXX_COMPILER_LAUNCHER and
# CMAKE_CUDA_COMPILER_LAUNCHER (their first elements are passed as --cxx-launcher
# and --cuda-launcher). Each is read when add_precompiled_graphs() is called.
#
# Works in-tree (included by the top-level CMakeLists.txt, _KILN_IN_TREE is TRUE)
# and installed (included by KilnConfig.cmake); it only refers to the Kiln::
# target names, which exist in both cases.
include_guard(GLOBAL)

cmake_minimum_required(VERSION 3.25)
include("${CMAKE_CURRENT_LIST_DIR}/KilnFindClangxx.cmake")

# Target forms. cpu levels are the -march levels clang++ accepts for x86-64 (plus
# names such as "native" or "znver3": any lowercase march-like word). cuda: an
# sm_ architecture ("sm_90").
set(_KILN_CPU_TARGET_REGEX "^cpu:[a-z0-9][a-z0-9_.-]*$")
set(_KILN_CUDA_TARGET_REGEX "^cuda:sm_[1-9][0-9][0-9]?$")
set(_KILN_IDENTIFIER_REGEX "^[A-Za-z_][A-Za-z0-9_]*$")

function(_Kiln_error name)
  string(CONCAT msg ${ARGN})
  message(FATAL_ERROR "add_precompiled_graphs(${name}): ${msg}")
endfunction()

# Checks the TARGETS list: each entry's form, and no duplicates.
function(_Kiln_validate_targets name)
  set(seen "")
  foreach(t IN LISTS ARGN)
    if(NOT t MATCHES "${_KILN_CPU_TARGET_REGEX}" AND NOT t MATCHES "${_KILN_CUDA_TARGET_REGEX}")
      _Kiln_error(${name} "TARGETS entry '${t}' is not cpu:<level> or cuda:sm_<NN>")
    endif()
    if(t IN_LIST seen)
      _Kiln_error(${name} "TARGETS entry '${t}' is listed twice")
    endif()
    list(APPEND seen "${t}")
  endforeach()
endfunction()

# GRAPH_TARGETS: pairs of a graph name and one comma-separated list of targets,
# each of them one of TARGETS. Sets <out_var> to the generator's arguments
# (--graph-targets <graph>=<t1,t2>, one per graph). Whether each graph exists is
# only known once the sources are traced: the generator checks that.
function(_Kiln_parse_graph_targets name out_var)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "" "" "PAIRS;TARGETS")
  set(args "")
  set(seen "")
  list(JOIN ARG_TARGETS " " targets_text)
  set(pairs ${ARG_PAIRS})
  list(LENGTH pairs count)
  set(i 0)
  while(i LESS count)
    list(GET pairs ${i} graph)
    math(EXPR i "${i} + 1")
    if(graph MATCHES "${_KILN_CPU_TARGET_REGEX}" OR graph MATCHES "${_KILN_CUDA_TARGET_REGEX}")
      _Kiln_error(${name} "GRAPH_TARGETS expected a graph name, got target '${graph}': give "
                  "each graph's targets as one comma-separated list (GRAPH_TARGETS my_graph "
                  "cpu:x86-64,cpu:x86-64-v3)")
    endif()
    if(NOT graph MATCHES "${_KILN_IDENTIFIER_REGEX}")
      _Kiln_error(${name} "GRAPH_TARGETS expected a graph name (a C identifier), got '${graph}'")
    endif()
    if(graph IN_LIST seen)
      _Kiln_error(${name} "GRAPH_TARGETS names graph '${graph}' twice (give it one list)")
    endif()
    list(APPEND seen "${graph}")
    if(i EQUAL count)
      _Kiln_error(${name} "GRAPH_TARGETS graph '${graph}' has no target list (expected "
                  "'${graph} <t1,t2,...>', e.g. '${graph} cpu:x86-64,cpu:x86-64-v3')")
    endif()
    list(GET pairs ${i} csv)
    math(EXPR i "${i} + 1")
    if(csv STREQUAL "" OR csv MATCHES "^,|,,|,$")
      _Kiln_error(${name} "GRAPH_TARGETS ${graph}: '${csv}' is not a comma-separated list of "
                  "targets (an entry is empty)")
    endif()
    string(REPLACE "," ";" listed "${csv}")
    set(listed_seen "")
    foreach(t IN LISTS listed)
      if(NOT t IN_LIST ARG_TARGETS)
        if(t MATCHES "${_KILN_CPU_TARGET_REGEX}" OR t MATCHES "${_KILN_CUDA_TARGET_REGEX}")
          _Kiln_error(${name} "GRAPH_TARGETS ${graph}: '${t}' is not one of TARGETS "
                      "(${targets_text}): a graph is built only for targets of the package")
        endif()
        _Kiln_error(${name} "GRAPH_TARGETS ${graph}: '${t}' is not cpu:<level> or "
                    "cuda:sm_<NN> (expected a comma-separated list of TARGETS entries: "
                    "${targets_text})")
      endif()
      if(t IN_LIST listed_seen)
        _Kiln_error(${name} "GRAPH_TARGETS ${graph}: '${t}' is listed twice")
      endif()
      list(APPEND listed_seen "${t}")
    endforeach()
    list(APPEND args --graph-targets "${graph}=${csv}")
  endwhile()
  set(${out_var} "${args}" PARENT_SCOPE)
endfunction()

# An op budget variable (KILN_CPU_OP_BUDGET, KILN_CUDA_OP_BUDGET): unset, or a
# count (0: no budget). Appends "--op-budget <kind>=<n>" to <args_var>.
function(_Kiln_op_budget_args name args_var kind variable)
  if(NOT DEFINED ${variable} OR "${${variable}}" STREQUAL "")
    return()
  endif()
  if(NOT "${${variable}}" MATCHES "^[0-9]+$")
    _Kiln_error(${name} "${variable} is '${${variable}}', expected an op count (0: no budget)")
  endif()
  set(${args_var} ${${args_var}} --op-budget "${kind}=${${variable}}" PARENT_SCOPE)
endfunction()

# A C++ namespace: identifiers joined by "::" (nested namespaces allowed).
function(_Kiln_validate_namespace name ns)
  string(REPLACE "::" ";" parts "${ns}")
  if(ns STREQUAL "" OR ns MATCHES "^::" OR ns MATCHES "::$")
    _Kiln_error(${name} "NAMESPACE '${ns}' is not a C++ namespace name")
  endif()
  foreach(part IN LISTS parts)
    if(NOT part MATCHES "${_KILN_IDENTIFIER_REGEX}")
      _Kiln_error(${name} "NAMESPACE '${ns}' is not a C++ namespace name")
    endif()
  endforeach()
endfunction()

# The tools the generator runs: clang++ (CPU kernels; only needed for cpu:
# targets), nvcc (cuda: targets), ninja (its own build), and the compiler
# launchers, if any. Sets <out_var>_CXX, _NVCC, _NINJA, _LAUNCHER, _CUDA_LAUNCHER.
function(_Kiln_find_build_tools name out_var)
  set(want_cpu FALSE)
  set(want_cuda FALSE)
  foreach(t IN LISTS ARGN)
    if(t MATCHES "^cuda:")
      set(want_cuda TRUE)
    else()
      set(want_cpu TRUE)
    endif()
  endforeach()

  set(cxx "${KILN_CLANGXX_EXECUTABLE}")
  if(NOT cxx)
    _Kiln_find_clangxx()
    set(cxx "${KILN_CLANGXX_EXECUTABLE}")
  endif()
  if(NOT cxx AND want_cpu)
    _Kiln_error(${name} "clang++ (compiles the CPU kernels) was not found (install clang "
                "or set KILN_CLANGXX_EXECUTABLE)")
  endif()

  set(nvcc "${KILN_NVCC_EXECUTABLE}")
  if(NOT nvcc)
    find_program(KILN_NVCC_EXECUTABLE NAMES nvcc
                 HINTS "$ENV{CUDA_HOME}/bin" "$ENV{CUDA_PATH}/bin" /usr/local/cuda/bin)
    set(nvcc "${KILN_NVCC_EXECUTABLE}")
  endif()
  if(NOT nvcc AND want_cuda)
    _Kiln_error(${name} "nvcc (compiles the CUDA kernels of the cuda: TARGETS) was not found "
                "(install the CUDA toolkit or set KILN_NVCC_EXECUTABLE)")
  endif()

  set(ninja "${KILN_NINJA_EXECUTABLE}")
  if(NOT ninja AND CMAKE_MAKE_PROGRAM MATCHES "(^|/)ninja(-build)?(\\.exe)?$")
    set(ninja "${CMAKE_MAKE_PROGRAM}")
  endif()
  if(NOT ninja)
    find_program(KILN_NINJA_EXECUTABLE NAMES ninja ninja-build)
    set(ninja "${KILN_NINJA_EXECUTABLE}")
  endif()
  if(NOT ninja)
    _Kiln_error(${name} "ninja (run by the generator) was not found (install ninja-build "
                "or set KILN_NINJA_EXECUTABLE)")
  endif()

  set(launcher "")
  if(CMAKE_CXX_COMPILER_LAUNCHER)
    list(GET CMAKE_CXX_COMPILER_LAUNCHER 0 launcher)
  endif()
  set(cuda_launcher "")
  if(CMAKE_CUDA_COMPILER_LAUNCHER)
    list(GET CMAKE_CUDA_COMPILER_LAUNCHER 0 cuda_launcher)
  endif()

  set(${out_var}_CXX "${cxx}" PARENT_SCOPE)
  set(${out_var}_NVCC "${nvcc}" PARENT_SCOPE)
  set(${out_var}_CUDA_LAUNCHER "${cuda_launcher}" PARENT_SCOPE)
  set(${out_var}_NINJA "${ninja}" PARENT_SCOPE)
  set(${out_var}_LAUNCHER "${launcher}" PARENT_SCOPE)
endfunction()

# One Ninja pool for all generators: each one runs its own parallel ninja, so
# running several at once would oversubscribe the machine.
function(_Kiln_generator_job_pool out_var)
  set(pool "")
  if(CMAKE_GENERATOR MATCHES "Ninja")
    set(pool kiln_generator)
    get_property(pools GLOBAL PROPERTY JOB_POOLS)
    if(NOT pools MATCHES "(^|;)kiln_generator=")
      set_property(GLOBAL APPEND PROPERTY JOB_POOLS kiln_generator=1)
    endif()
  endif()
  set(${out_var} "${pool}" PARENT_SCOPE)
endfunction()

function(add_precompiled_graphs NAME)
  set(options NO_GENERAL)
  set(one_value_args PACKAGE NAMESPACE TAG SIGN_KEY)
  set(multi_value_args GRAPHS TARGETS PROFILE GRAPH_TARGETS)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${options}" "${one_value_args}" "${multi_value_args}")

  # --- validate, then fill in defaults -----------------------------------------
  if(NOT NAME MATCHES "${_KILN_IDENTIFIER_REGEX}")
    _Kiln_error("${NAME}" "the name must be a C identifier ([A-Za-z_][A-Za-z0-9_]*)")
  endif()
  if(ARG_UNPARSED_ARGUMENTS)
    list(JOIN ARG_UNPARSED_ARGUMENTS "' '" unparsed)
    _Kiln_error(${NAME} "unknown arguments: '${unparsed}' (GRAPHS, TARGETS, PACKAGE, "
                "NAMESPACE, PROFILE, TAG, GRAPH_TARGETS, SIGN_KEY and NO_GENERAL are known)")
  endif()
  foreach(kw IN LISTS ARG_KEYWORDS_MISSING_VALUES)
    _Kiln_error(${NAME} "${kw} given without a value")
  endforeach()
  if(NOT ARG_GRAPHS)
    _Kiln_error(${NAME} "GRAPHS is required (C++ sources with KILN_GRAPH declarations)")
  endif()
  if(NOT ARG_TARGETS)
    _Kiln_error(${NAME} "TARGETS is required (for example cpu:x86-64 cpu:x86-64-v3)")
  endif()
  _Kiln_validate_targets(${NAME} ${ARG_TARGETS})
  _Kiln_parse_graph_targets(${NAME} graph_target_args
                            PAIRS ${ARG_GRAPH_TARGETS} TARGETS ${ARG_TARGETS})
  set(op_budget_args "")
  _Kiln_op_budget_args(${NAME} op_budget_args cpu KILN_CPU_OP_BUDGET)
  _Kiln_op_budget_args(${NAME} op_budget_args cuda KILN_CUDA_OP_BUDGET)
  if(NOT DEFINED ARG_NAMESPACE)
    set(ARG_NAMESPACE "${NAME}")
  endif()
  _Kiln_validate_namespace(${NAME} "${ARG_NAMESPACE}")
  # A profile must exist when the build is configured: it is a dependency of
  # the generator run. An empty file is an empty profile.
  set(profiles "")
  foreach(profile IN LISTS ARG_PROFILE)
    cmake_path(ABSOLUTE_PATH profile BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE abs_profile)
    if(NOT EXISTS "${abs_profile}")
      _Kiln_error(${NAME} "PROFILE '${abs_profile}' does not exist (record one with "
                  "KILN_PROFILE_OUT=<file>, or create an empty file)")
    endif()
    if(IS_DIRECTORY "${abs_profile}")
      _Kiln_error(${NAME} "PROFILE '${abs_profile}' is a directory, not a .kprof file")
    endif()
    if(abs_profile IN_LIST profiles)
      _Kiln_error(${NAME} "PROFILE '${abs_profile}' is listed twice")
    endif()
    list(APPEND profiles "${abs_profile}")
  endforeach()
  if(DEFINED ARG_PACKAGE)
    cmake_path(ABSOLUTE_PATH ARG_PACKAGE BASE_DIRECTORY "${CMAKE_CURRENT_BINARY_DIR}"
               NORMALIZE)
  endif()
  # The secret key must exist when the build is configured (it is a
  # dependency of the generator run); its contents are checked by the
  # generator, before it compiles anything.
  set(sign_key "")
  if(DEFINED ARG_SIGN_KEY)
    cmake_path(ABSOLUTE_PATH ARG_SIGN_KEY BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE sign_key)
    if(NOT EXISTS "${sign_key}")
      _Kiln_error(${NAME} "SIGN_KEY '${sign_key}' does not exist (make a key pair with "
                  "`kiln keygen --out NAME` and give NAME.key)")
    endif()
    if(IS_DIRECTORY "${sign_key}")
      _Kiln_error(${NAME} "SIGN_KEY '${sign_key}' is a directory, not a secret key file")
    endif()
    if(sign_key MATCHES "\\.pub$")
      _Kiln_error(${NAME} "SIGN_KEY '${sign_key}' is a public key: give the secret key "
                  "(NAME.key), which signs; NAME.pub is what a deployment trusts")
    endif()
  endif()
  if(DEFINED ARG_TAG AND ARG_TAG MATCHES "[\n\r]")
    _Kiln_error(${NAME} "TAG must be one line")
  endif()
  foreach(src IN LISTS ARG_GRAPHS)
    cmake_path(ABSOLUTE_PATH src BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE abs_src)
    get_source_file_property(generated "${abs_src}" GENERATED)
    if(NOT generated AND NOT EXISTS "${abs_src}")
      _Kiln_error(${NAME} "GRAPHS source '${src}' does not exist")
    endif()
  endforeach()

  foreach(tgt IN ITEMS ${NAME} _kiln_gen_${NAME})
    if(TARGET ${tgt})
      _Kiln_error(${NAME} "a target named '${tgt}' already exists")
    endif()
  endforeach()
  foreach(tgt IN ITEMS Kiln::gen_main Kiln::runtime)
    if(NOT TARGET ${tgt})
      _Kiln_error(${NAME} "target ${tgt} does not exist: use find_package(Kiln) or "
                  "add Kiln with add_subdirectory() first")
    endif()
  endforeach()
  # Where the generator writes (fixed per name): <binary dir>/<name>.kiln_out/.
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/${NAME}.kiln_out")
  set(package_file "${out_dir}/${NAME}.kiln")
  if(DEFINED ARG_PACKAGE AND ARG_PACKAGE STREQUAL package_file)
    _Kiln_error(${NAME} "PACKAGE '${ARG_PACKAGE}' is the generator's own output, "
                "choose another path")
  endif()

  # The package is embedded by an assembler file. enable_language() only works
  # at file scope: KilnConfig.cmake enables ASM for installed users, Kiln's own
  # project() lists it.
  if(NOT CMAKE_ASM_COMPILE_OBJECT)
    _Kiln_error(${NAME} "the ASM language is not enabled in this directory: add ASM to "
                "project(... LANGUAGES ...) or call enable_language(ASM) at file scope "
                "(the package is embedded by an assembler .incbin)")
  endif()

  _Kiln_find_build_tools(${NAME} tool ${ARG_TARGETS})
  _Kiln_generator_job_pool(job_pool)

  # --- 1. the generator executable ---------------------------------------------
  set(generator _kiln_gen_${NAME})
  add_executable(${generator} ${ARG_GRAPHS})
  target_link_libraries(${generator} PRIVATE Kiln::gen_main)
  set_target_properties(${generator} PROPERTIES
    OUTPUT_NAME "${NAME}.generator"
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF)

  # --- 2. run it at build time --------------------------------------------------
  file(MAKE_DIRECTORY "${out_dir}")
  set(header_file "${out_dir}/${NAME}.h")
  set(source_file "${out_dir}/${NAME}.cpp")
  set(embed_file "${out_dir}/${NAME}_embed.S")

  list(JOIN ARG_TARGETS "," targets_csv)
  set(args
    --name "${NAME}"
    --namespace "${ARG_NAMESPACE}"
    --targets "${targets_csv}"
    --out-dir "${out_dir}"
    --work-dir "${out_dir}/work")
  if(tool_CXX)
    list(APPEND args --cxx "${tool_CXX}")
  endif()
  if(tool_LAUNCHER)
    list(APPEND args --cxx-launcher "${tool_LAUNCHER}")
  endif()
  if(tool_NVCC)
    list(APPEND args --nvcc "${tool_NVCC}")
  endif()
  if(tool_CUDA_LAUNCHER)
    list(APPEND args --cuda-launcher "${tool_CUDA_LAUNCHER}")
  endif()
  list(APPEND args --ninja "${tool_NINJA}")
  if(KILN_GENERATOR_JOBS)
    list(APPEND args --jobs "${KILN_GENERATOR_JOBS}")
  endif()
  foreach(profile IN LISTS profiles)
    list(APPEND args --profile "${profile}")
  endforeach()
  if(DEFINED ARG_TAG)
    list(APPEND args --tag "${ARG_TAG}")
  endif()
  if(ARG_NO_GENERAL)
    list(APPEND args --no-general)
  endif()
  if(sign_key)
    list(APPEND args --sign-key "${sign_key}")
  endif()
  list(APPEND args ${graph_target_args} ${op_budget_args})

  set(pool_args "")
  if(job_pool)
    set(pool_args JOB_POOL ${job_pool})
  endif()
  # The generator rewrites only outputs whose bytes changed. Ninja (restat) then
  # rebuilds only what really changed; other generators compare mtimes only, so
  # there every output is touched, or the command would rerun on every build.
  set(touch_args "")
  if(NOT CMAKE_GENERATOR MATCHES "Ninja")
    set(touch_args COMMAND "${CMAKE_COMMAND}" -E touch_nocreate
        "${package_file}" "${header_file}" "${source_file}" "${embed_file}")
  endif()
  # The generator target changes whenever a graph source (or Kiln's compiler)
  # changes, so depending on it reruns the generator. Its depfile (<name>.d) is
  # not used: the generator does its own incremental build under work/.
  add_custom_command(
    OUTPUT "${package_file}" "${header_file}" "${source_file}" "${embed_file}"
    COMMAND ${generator} ${args}
    ${touch_args}
    DEPENDS ${generator} ${profiles} ${sign_key}
    WORKING_DIRECTORY "${out_dir}"
    COMMENT "Precompiling graphs ${NAME} for ${targets_csv}"
    ${pool_args}
    VERBATIM)

  # --- 3. the library ------------------------------------------------------------
  add_library(${NAME} STATIC "${source_file}" "${embed_file}")
  # The .S only names the package (.incbin): reassemble when the package changes.
  set_source_files_properties("${embed_file}" PROPERTIES OBJECT_DEPENDS "${package_file}")
  target_include_directories(${NAME} PUBLIC "$<BUILD_INTERFACE:${out_dir}>")
  target_link_libraries(${NAME} PUBLIC Kiln::runtime)
  target_compile_features(${NAME} PUBLIC cxx_std_20)
  set_target_properties(${NAME} PROPERTIES
    POSITION_INDEPENDENT_CODE ON
    KILN_PACKAGE_FILE "${package_file}")

  # --- 4. the optional copy of the package ---------------------------------------
  if(DEFINED ARG_PACKAGE)
    add_custom_command(
      OUTPUT "${ARG_PACKAGE}"
      COMMAND "${CMAKE_COMMAND}" -E copy_if_different "${package_file}" "${ARG_PACKAGE}"
      DEPENDS "${package_file}"
      COMMENT "Writing package ${ARG_PACKAGE}"
      VERBATIM)
    # A source of the library (not compiled: unknown extension), so the copy runs
    # whenever the library is built, in the library's own build rules.
    target_sources(${NAME} PRIVATE "${ARG_PACKAGE}")
    set_source_files_properties("${ARG_PACKAGE}" PROPERTIES HEADER_FILE_ONLY ON)
    set_target_properties(${NAME} PROPERTIES KILN_PACKAGE "${ARG_PACKAGE}")
  endif()
endfunction()
