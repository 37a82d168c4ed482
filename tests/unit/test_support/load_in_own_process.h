// Loading a library that the runtime or the JIT opens once per process
// (the CUDA driver, cuBLASLt, NVRTC) from another file, in a process of its
// own, so that what this process already loaded, or failed to, does not
// decide the result.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

namespace kiln_test {

// Runs `error_text` (the failure it returns, as text) in a new process of
// this test binary with `variable` set to `value`, and expects that text to
// match `pattern` (a regular expression, as for EXPECT_EXIT). The new
// process re-runs the test from its start ("threadsafe" death tests), not
// a fork of this one.
template <class ErrorText>
void expect_load_error_in_own_process(const char* variable, const char* value, ErrorText error_text,
                                      const std::string& pattern) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        ::setenv(variable, value, 1);
        std::fputs(std::string(error_text()).c_str(), stderr);
        std::exit(0);
      },
      testing::ExitedWithCode(0), pattern);
}

}  // namespace kiln_test
