// What an application includes: the runtime, a generated library's header
// (tests/graph_targets), the fallback JIT it may install, and the graph API
// its graph sources use. The check compiles this with FlatBuffers hidden
// (CMakeLists.txt).
#include <kiln/graph.h>
#include <kiln/jit/fallback_jit.h>
#include <kiln/runtime.h>

#include "graph_targets_kernels.h"
