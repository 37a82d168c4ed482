# Install rules, the KilnTargets export set and KilnConfig.cmake.
#
# Installed layout (under CMAKE_INSTALL_PREFIX):
#   bin/kiln                               the CLI
#   lib/libkiln_runtime.a ...              runtime, jit, compiler, package_merge, gen_main,
#                                          support (static)
#   include/kiln/...                       runtime, compiler, schema, support headers, and the
#                                          generated kiln/abi/kiln_package_generated.h
#   lib/cmake/Kiln/KilnConfig.cmake        find_package(Kiln) entry point
#   lib/cmake/Kiln/KilnConfigVersion.cmake
#   lib/cmake/Kiln/KilnTargets*.cmake      imported Kiln::runtime, Kiln::jit, Kiln::compiler, ...
#   lib/cmake/Kiln/KilnAddPrecompiledGraphs.cmake
#   lib/cmake/Kiln/KilnFindClangxx.cmake   the clang++ search list it shares with the build
#
# Third-party headers are not installed: the FlatBuffers, DLPack and xxHash
# headers are found again by KilnConfig.cmake on the consumer's machine (the
# paths found here are its first hints), and so is zstd's static library
# (Debian's libzstd-dev) behind Kiln::zstd, and libsodium's (libsodium-dev)
# behind Kiln::sodium. Each install(TARGETS) is
# guarded so the tree configures while its parts are still landing.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KILN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/Kiln" CACHE STRING
    "Where KilnConfig.cmake and the export set are installed (relative to the prefix)")
mark_as_advanced(KILN_INSTALL_CMAKEDIR)

# target -> exported name (Kiln::<name>). Header-only helper targets are exported
# too, since the libraries name them in their link interfaces.
set(_kiln_install_targets
  kiln_support:support
  kiln_schemas:schemas
  kiln_flatbuffers_headers:flatbuffers_headers
  kiln_dlpack_headers:dlpack_headers
  kiln_xxhash_headers:xxhash_headers
  kiln_zstd:zstd
  kiln_sodium:sodium
  kiln_runtime:runtime
  kiln_jit:jit
  kiln_compiler:compiler
  kiln_package_merge:package_merge
  kiln_gen_main:gen_main
  kiln:kiln)

set(_kiln_installed_targets "")
foreach(_kiln_pair IN LISTS _kiln_install_targets)
  string(REPLACE ":" ";" _kiln_pair "${_kiln_pair}")
  list(GET _kiln_pair 0 _kiln_target)
  list(GET _kiln_pair 1 _kiln_export_name)
  if(NOT TARGET ${_kiln_target})
    continue()
  endif()
  set_target_properties(${_kiln_target} PROPERTIES EXPORT_NAME ${_kiln_export_name})
  install(TARGETS ${_kiln_target}
    EXPORT KilnTargets
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
  list(APPEND _kiln_installed_targets ${_kiln_export_name})
endforeach()

# Public headers. Every include/ tree holds kiln/...; they merge into one.
foreach(_kiln_dir IN ITEMS runtime/include runtime/jit/include tools/compiler/include schemas/include
                          support/include)
  if(IS_DIRECTORY "${PROJECT_SOURCE_DIR}/${_kiln_dir}")
    install(DIRECTORY "${PROJECT_SOURCE_DIR}/${_kiln_dir}/"
      DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
      FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp" PATTERN "*.inc")
  endif()
endforeach()
install(FILES "${PROJECT_BINARY_DIR}/schemas/include/kiln/abi/kiln_package_generated.h"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/kiln/abi")

install(EXPORT KilnTargets
  NAMESPACE Kiln::
  DESTINATION "${KILN_INSTALL_CMAKEDIR}")

# Build-time discoveries, written into KilnConfig.cmake as hints.
set(KILN_CONFIG_EXPORTED_TARGETS "${_kiln_installed_targets}")
foreach(_kiln_var IN ITEMS KILN_FLATBUFFERS_INCLUDE_DIR KILN_DLPACK_INCLUDE_DIR
                           KILN_XXHASH_INCLUDE_DIR KILN_ZSTD_STATIC_LIBRARY
                           KILN_SODIUM_STATIC_LIBRARY
                           KILN_CLANGXX_EXECUTABLE KILN_NINJA_EXECUTABLE KILN_NVCC_EXECUTABLE)
  set(KILN_CONFIG_${_kiln_var} "${${_kiln_var}}")
endforeach()

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/KilnConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cmake/KilnConfig.cmake"
  INSTALL_DESTINATION "${KILN_INSTALL_CMAKEDIR}"
  NO_SET_AND_CHECK_MACRO)
# 0.x: a new minor may break the API, so only the same minor is compatible.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/cmake/KilnConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/cmake/KilnConfig.cmake"
  "${PROJECT_BINARY_DIR}/cmake/KilnConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/KilnAddPrecompiledGraphs.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/KilnFindClangxx.cmake"
  DESTINATION "${KILN_INSTALL_CMAKEDIR}")

unset(_kiln_pair)
unset(_kiln_target)
unset(_kiln_export_name)
unset(_kiln_dir)
unset(_kiln_var)
