# Driven by the ctest integration.add_precompiled_graphs_errors: configures tiny
# projects that call add_precompiled_graphs() wrongly and checks that each one
# fails with the message naming the bad argument.
#   cmake -DFUNCTION_FILE=<KilnAddPrecompiledGraphs.cmake> -DWORK_DIR=<dir> -P check_errors.cmake
cmake_minimum_required(VERSION 3.25)
foreach(var IN ITEMS FUNCTION_FILE WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "check_errors.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")

# Each case: "<call>|<regex the error must match (whitespace collapsed)>".
# LANGUAGES NONE keeps configure fast; the ASM check is the last validation step,
# so every other error is reported before it.
set(cases
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 gpu:foo)|add_precompiled_graphs\\(mlp\\): TARGETS entry 'gpu:foo' is not cpu:<level> or cuda:sm_<NN>"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cuda:sm_9)|TARGETS entry 'cuda:sm_9' is not cpu:<level> or cuda:sm_<NN>"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS x86-64)|TARGETS entry 'x86-64' is not"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 cpu:x86-64)|TARGETS entry 'cpu:x86-64' is listed twice"
  "add_precompiled_graphs(mlp GRAPHS g.cpp)|add_precompiled_graphs\\(mlp\\): TARGETS is required"
  "add_precompiled_graphs(mlp TARGETS cpu:x86-64)|add_precompiled_graphs\\(mlp\\): GRAPHS is required"
  "add_precompiled_graphs(mlp BOGUS GRAPHS g.cpp TARGETS cpu:x86-64)|unknown arguments: 'BOGUS'"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PACKAGE)|PACKAGE given without a value"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 NAMESPACE a::1b)|NAMESPACE 'a::1b' is not a C\\+\\+ namespace name"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PROFILE nope.kprof)|PROFILE '.*/nope.kprof' does not exist \\(record one with KILN_PROFILE_OUT"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PROFILE g.kprof nope2.kprof)|PROFILE '.*/nope2.kprof' does not exist"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PROFILE g.kprof g.kprof)|PROFILE '.*/g.kprof' is listed twice"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PROFILE sub)|PROFILE '.*/sub' is a directory"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PROFILE)|PROFILE given without a value"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 SIGN_KEY nope.key)|SIGN_KEY '.*/nope.key' does not exist \\(make a key pair with `kiln keygen --out NAME`"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 SIGN_KEY sub)|SIGN_KEY '.*/sub' is a directory, not a secret key file"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 SIGN_KEY g.pub)|SIGN_KEY '.*/g.pub' is a public key: give the secret key \\(NAME.key\\)"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 SIGN_KEY)|SIGN_KEY given without a value"
  "add_precompiled_graphs(mlp GRAPHS missing.cpp TARGETS cpu:x86-64)|GRAPHS source 'missing.cpp' does not exist"
  "add_precompiled_graphs(my-lib GRAPHS g.cpp TARGETS cpu:x86-64)|add_precompiled_graphs\\(my-lib\\): the name must be a C identifier"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 PACKAGE mlp.kiln_out/mlp.kiln)|is the generator's own output"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS sin_chain cuda:sm_90)|add_precompiled_graphs\\(mlp\\): GRAPH_TARGETS sin_chain: 'cuda:sm_90' is not one of TARGETS \\(cpu:x86-64\\): a graph is built only for targets of the package"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 cpu:x86-64-v3 GRAPH_TARGETS sin_chain cpu:x86-64 cpu:x86-64-v3)|GRAPH_TARGETS expected a graph name, got target 'cpu:x86-64-v3': give each graph's targets as one comma-separated list"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS sin_chain)|GRAPH_TARGETS graph 'sin_chain' has no target list"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 cpu:x86-64-v3 GRAPH_TARGETS sin_chain cpu:x86-64,,cpu:x86-64-v3)|GRAPH_TARGETS sin_chain: 'cpu:x86-64,,cpu:x86-64-v3' is not a comma-separated list of targets"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS sin_chain cpu:x86-64,)|GRAPH_TARGETS sin_chain: 'cpu:x86-64,' is not a comma-separated list"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS sin_chain cpu:x86-64,cpu:x86-64)|GRAPH_TARGETS sin_chain: 'cpu:x86-64' is listed twice"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS a cpu:x86-64 GRAPH_TARGETS a cpu:x86-64)|GRAPH_TARGETS names graph 'a' twice \\(give it one list\\)"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS sin-chain cpu:x86-64)|GRAPH_TARGETS expected a graph name \\(a C identifier\\), got 'sin-chain'"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS sin_chain gpu:x)|GRAPH_TARGETS sin_chain: 'gpu:x' is not cpu:<level> or cuda:sm_<NN>"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64 GRAPH_TARGETS)|GRAPH_TARGETS given without a value"
  "set(KILN_CUDA_OP_BUDGET lots)\nadd_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64)|KILN_CUDA_OP_BUDGET is 'lots', expected an op count \\(0: no budget\\)"
  "add_library(mlp INTERFACE)\nadd_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64)|a target named 'mlp' already exists"
  "add_precompiled_graphs(mlp GRAPHS g.cpp TARGETS cpu:x86-64)|the ASM language is not enabled")

set(index 0)
set(failures 0)
foreach(case IN LISTS cases)
  math(EXPR index "${index} + 1")
  string(FIND "${case}" "|" bar REVERSE)
  string(SUBSTRING "${case}" 0 ${bar} call)
  math(EXPR bar "${bar} + 1")
  string(SUBSTRING "${case}" ${bar} -1 expected)
  string(REPLACE "\\n" "\n" call "${call}")

  set(dir "${WORK_DIR}/case${index}")
  file(WRITE "${dir}/g.cpp" "// graph source stand-in\n")
  file(WRITE "${dir}/g.kprof" "")
  file(WRITE "${dir}/g.pub" "")
  file(MAKE_DIRECTORY "${dir}/sub")
  file(WRITE "${dir}/CMakeLists.txt"
    "cmake_minimum_required(VERSION 3.25)\n"
    "project(ErrorCase LANGUAGES NONE)\n"
    "add_library(Kiln::gen_main INTERFACE IMPORTED)\n"
    "add_library(Kiln::runtime INTERFACE IMPORTED)\n"
    "include(\"${FUNCTION_FILE}\")\n"
    "${call}\n")
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${dir}" -B "${dir}/build"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(REGEX REPLACE "[ \t\r\n]+" " " err_flat "${err}")
  if(rc EQUAL 0)
    message(SEND_ERROR "case ${index}: configure succeeded, want an error:\n  ${call}")
    math(EXPR failures "${failures} + 1")
  elseif(NOT err_flat MATCHES "${expected}")
    message(SEND_ERROR "case ${index}: error does not match '${expected}':\n  ${call}\n${err}")
    math(EXPR failures "${failures} + 1")
  else()
    message(STATUS "case ${index}: ok: ${call}")
  endif()
endforeach()
if(failures GREATER 0)
  message(FATAL_ERROR "${failures} of ${index} cases failed")
endif()
message(STATUS "all ${index} error cases ok")
