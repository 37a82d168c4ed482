# The one list of names clang++ is searched by, for the in-tree build
# (KilnDependencies.cmake) and for add_precompiled_graphs() when installed, so
# both pick the same compiler: the unversioned clang++ on PATH first, then the
# newest versioned one. The fallback JIT searches nothing: it is built with the
# compiler found here (KILN_JIT_DEFAULT_CLANGXX, runtime/jit/CMakeLists.txt).
# Installed beside KilnAddPrecompiledGraphs.cmake, which includes it.
include_guard(GLOBAL)

# Sets the cache variable KILN_CLANGXX_EXECUTABLE; extra arguments (HINTS ...)
# go to find_program. A function, not a variable, so the list is the same in
# every directory that calls add_precompiled_graphs().
function(_Kiln_find_clangxx)
  find_program(KILN_CLANGXX_EXECUTABLE
    NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14
    ${ARGN}
    DOC "clang++ that compiles Kiln's CPU kernels (the generator and the JIT)")
endfunction()
