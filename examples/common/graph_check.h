// What every example does with a graph: run it from its package on random
// inputs (never all zeros), time it, and check each output against the
// reference interpreter within its dtype's tolerance.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <kiln/compiler/ir.h>
#include <kiln/runtime.h>

#include "device_buffers.h"

struct GraphCheck {
  std::string graph;
  std::string specialization;  // the one the call selected
  std::string device;          // "cpu" or "cuda"
  double us_per_call = 0;      // median
  double max_error = 0;        // largest |got - want| over the outputs
  bool ok = false;             // every output within tolerance
};

// Symbols named in `sizes` take that value, every other one `default_size`.
GraphCheck check_graph(kiln::Package& package, DeviceBuffers& device, const kiln::ir::Graph& g,
                       const std::map<std::string, int64_t>& sizes, int64_t default_size,
                       std::mt19937_64& rng);

// The table of checks, one line each, and whether all passed.
bool print_checks(const std::vector<GraphCheck>& checks);

// A model example's main: on the GPU when there is one (else the CPU),
// checks every graph this binary registers from `package` (sizes as
// check_graph), prints "Kiln <name> example: <what>, on <device>", the
// table and "<name>: matches the interpreter" (or MISMATCH, or the error).
// Returns the process's exit status.
int check_registered_graphs(const char* name, const std::string& what, kiln::Package& package,
                            const std::map<std::string, int64_t>& sizes, int64_t default_size);
