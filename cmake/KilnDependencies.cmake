# Finds Kiln's build dependencies. Each missing one stops configure with the
# Debian package that provides it, since a link error later says much less.
include_guard(GLOBAL)

function(_Kiln_require_dependency what package)
  message(FATAL_ERROR
    "Kiln: ${what} not found. Install it with: apt-get install -y ${package}")
endfunction()

# FlatBuffers: flatc at build time, headers only at run time (the device image
# has no libflatbuffers).
find_package(flatbuffers CONFIG QUIET)
if(NOT TARGET flatbuffers::flatc)
  find_program(KILN_FLATC flatc)
  if(NOT KILN_FLATC)
    _Kiln_require_dependency("flatc (FlatBuffers compiler)" "flatbuffers-compiler")
  endif()
  add_executable(flatbuffers::flatc IMPORTED GLOBAL)
  set_target_properties(flatbuffers::flatc PROPERTIES IMPORTED_LOCATION "${KILN_FLATC}")
endif()
find_path(KILN_FLATBUFFERS_INCLUDE_DIR flatbuffers/flatbuffers.h)
if(NOT KILN_FLATBUFFERS_INCLUDE_DIR)
  _Kiln_require_dependency("FlatBuffers headers" "libflatbuffers-dev")
endif()
if(NOT TARGET Kiln::flatbuffers_headers)
  add_library(kiln_flatbuffers_headers INTERFACE)
  add_library(Kiln::flatbuffers_headers ALIAS kiln_flatbuffers_headers)
  target_include_directories(kiln_flatbuffers_headers SYSTEM INTERFACE
    "$<BUILD_INTERFACE:${KILN_FLATBUFFERS_INCLUDE_DIR}>")
endif()

# zstd from Debian's libzstd-dev, linked statically: the runtime carries no
# libzstd.so dependency (the device image and users' machines need not have
# one). Debian's libzstd.a is position independent, but it has the legacy
# (v0.5 to v0.7) frame decoders compiled in (91 KB of objects), which
# ZSTD_decompress reaches, and no per-function sections, so --gc-sections
# cannot drop them: the runtime's size budget is 600 KB stripped (README,
# tests/bench/CMakeLists.txt).
find_path(KILN_ZSTD_INCLUDE_DIR zstd.h)
find_library(KILN_ZSTD_STATIC_LIBRARY NAMES libzstd.a)
if(NOT KILN_ZSTD_INCLUDE_DIR OR NOT KILN_ZSTD_STATIC_LIBRARY)
  _Kiln_require_dependency("zstd (zstd.h and the static libzstd.a)" "libzstd-dev")
endif()
file(STRINGS "${KILN_ZSTD_INCLUDE_DIR}/zstd.h" _kiln_zstd_version_lines
  REGEX "^#define ZSTD_VERSION_(MAJOR|MINOR|RELEASE) +[0-9]+")
set(_kiln_zstd_version "")
foreach(_kiln_part IN ITEMS MAJOR MINOR RELEASE)
  string(REGEX MATCH "ZSTD_VERSION_${_kiln_part} +([0-9]+)" _kiln_match
    "${_kiln_zstd_version_lines}")
  list(APPEND _kiln_zstd_version "${CMAKE_MATCH_1}")
endforeach()
list(JOIN _kiln_zstd_version "." _kiln_zstd_version)
# The package reader needs ZSTD_getFrameContentSize (zstd 1.3.0); Kiln's tests
# run with Debian 12's 1.5.4.
if(_kiln_zstd_version VERSION_LESS 1.3.0)
  message(FATAL_ERROR "Kiln: zstd ${_kiln_zstd_version} found in ${KILN_ZSTD_INCLUDE_DIR}; "
                      "Kiln needs 1.3.0 or newer (apt-get install -y libzstd-dev)")
endif()
find_package(Threads REQUIRED)
if(NOT TARGET kiln_zstd)
  # An interface target so the install step can export it: KilnConfig.cmake
  # finds libzstd.a again on the consumer's machine (KILN_ZSTD_STATIC_LIBRARY
  # here is its first hint).
  add_library(kiln_zstd INTERFACE)
  add_library(Kiln::zstd ALIAS kiln_zstd)
  target_include_directories(kiln_zstd SYSTEM INTERFACE
    "$<BUILD_INTERFACE:${KILN_ZSTD_INCLUDE_DIR}>")
  # Debian builds libzstd with ZSTD_MULTITHREAD, so it needs pthreads.
  target_link_libraries(kiln_zstd INTERFACE
    "$<BUILD_INTERFACE:${KILN_ZSTD_STATIC_LIBRARY}>" Threads::Threads)
endif()
unset(_kiln_zstd_version_lines)
unset(_kiln_part)
unset(_kiln_match)

# libsodium from Debian's libsodium-dev, linked statically as zstd is:
# ed25519 signatures on packages and the JIT cache's entry MACs
# (kiln/support/crypto.h, the one file that calls it). Debian's libsodium.a
# has no per-function sections either: verifying a signature pulls in
# libsodium's core, which references every primitive's implementation
# chooser (about 210 KB stripped), hence the runtime's 800 KB budget.
find_path(KILN_SODIUM_INCLUDE_DIR sodium.h)
find_library(KILN_SODIUM_STATIC_LIBRARY NAMES libsodium.a)
if(NOT KILN_SODIUM_INCLUDE_DIR OR NOT KILN_SODIUM_STATIC_LIBRARY)
  _Kiln_require_dependency("libsodium (sodium.h and the static libsodium.a)" "libsodium-dev")
endif()
if(NOT TARGET kiln_sodium)
  add_library(kiln_sodium INTERFACE)
  add_library(Kiln::sodium ALIAS kiln_sodium)
  target_include_directories(kiln_sodium SYSTEM INTERFACE
    "$<BUILD_INTERFACE:${KILN_SODIUM_INCLUDE_DIR}>")
  target_link_libraries(kiln_sodium INTERFACE
    "$<BUILD_INTERFACE:${KILN_SODIUM_STATIC_LIBRARY}>" Threads::Threads)
endif()

# xxHash, header-only (XXH_INLINE_ALL): XXH3-128 for checksums and keys.
find_path(KILN_XXHASH_INCLUDE_DIR xxhash.h)
if(NOT KILN_XXHASH_INCLUDE_DIR)
  _Kiln_require_dependency("xxHash headers" "libxxhash-dev")
endif()

# DLPack, header-only: the tensor type of the runtime's API.
find_path(KILN_DLPACK_INCLUDE_DIR dlpack/dlpack.h)
if(NOT KILN_DLPACK_INCLUDE_DIR)
  _Kiln_require_dependency("DLPack headers" "libdlpack-dev")
endif()
if(NOT TARGET kiln_dlpack_headers)
  # The runtime's public API takes DLTensor, so its users need the header too.
  add_library(kiln_dlpack_headers INTERFACE)
  add_library(Kiln::dlpack_headers ALIAS kiln_dlpack_headers)
  target_include_directories(kiln_dlpack_headers SYSTEM INTERFACE
    "$<BUILD_INTERFACE:${KILN_DLPACK_INCLUDE_DIR}>")
endif()

# Ninja and clang++: run by the generator at build time, not linked.
find_program(KILN_NINJA_EXECUTABLE NAMES ninja ninja-build)
if(NOT KILN_NINJA_EXECUTABLE)
  _Kiln_require_dependency("ninja" "ninja-build")
endif()
include("${CMAKE_CURRENT_LIST_DIR}/KilnFindClangxx.cmake")
_Kiln_find_clangxx()
if(NOT KILN_CLANGXX_EXECUTABLE)
  _Kiln_require_dependency("clang++ (compiles CPU kernels)" "clang")
endif()
# nvcc is optional: only CUDA targets need it (add_precompiled_graphs() says so
# when one is asked for without it).
find_program(KILN_NVCC_EXECUTABLE NAMES nvcc
  HINTS "$ENV{CUDA_HOME}/bin" "$ENV{CUDA_PATH}/bin" /usr/local/cuda/bin
  DOC "nvcc that add_precompiled_graphs() compiles CUDA kernels with")

if(KILN_BUILD_TESTS)
  find_package(GTest CONFIG QUIET)
  if(NOT GTest_FOUND)
    find_package(GTest QUIET)
  endif()
  if(NOT GTest_FOUND)
    _Kiln_require_dependency("GoogleTest" "libgtest-dev")
  endif()
endif()

