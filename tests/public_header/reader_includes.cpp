// The control: the package reader's header includes the generated FlatBuffers
// code, so the check must fail on it (CMakeLists.txt).
#include <kiln/package_reader.h>
