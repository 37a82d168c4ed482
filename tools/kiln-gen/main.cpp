// The generator's entry point. add_precompiled_graphs() links this with the
// user's graph sources, whose KILN_GRAPH declarations register themselves.
#include "kiln/compiler/generator.h"

int main(int argc, char** argv) { return kiln::compiler::generator_main(argc, argv); }
