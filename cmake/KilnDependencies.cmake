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

# zstd, vendored and linked statically (third_party/zstd/README.md): the
# runtime carries no libzstd dependency and no legacy-format decoders.
if(NOT TARGET kiln_zstd)
  add_library(kiln_zstd STATIC "${PROJECT_SOURCE_DIR}/third_party/zstd/zstd.c")
  add_library(Kiln::zstd ALIAS kiln_zstd)
  set_target_properties(kiln_zstd PROPERTIES
    C_STANDARD 99
    POSITION_INDEPENDENT_CODE ON
    C_CLANG_TIDY ""
    EXPORT_NAME zstd)
  target_compile_definitions(kiln_zstd PRIVATE ZSTD_DISABLE_ASM)
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(kiln_zstd PRIVATE -O2 -ffunction-sections -fdata-sections)
  endif()
  target_include_directories(kiln_zstd SYSTEM PUBLIC
    "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/third_party/zstd>")
  find_package(Threads REQUIRED)
  target_link_libraries(kiln_zstd PRIVATE Threads::Threads)
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

find_package(Threads REQUIRED)
