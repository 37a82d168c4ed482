#include "kiln/error.h"

#include <exception>
#include <new>
#include <utility>

#include "api_boundary.h"
#include "text.h"

namespace kiln {

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument:
      return "invalid_argument";
    case ErrorCode::io:
      return "io";
    case ErrorCode::package_bad_magic:
      return "package_bad_magic";
    case ErrorCode::package_unsupported_version:
      return "package_unsupported_version";
    case ErrorCode::package_truncated:
      return "package_truncated";
    case ErrorCode::package_checksum_mismatch:
      return "package_checksum_mismatch";
    case ErrorCode::package_verifier_failed:
      return "package_verifier_failed";
    case ErrorCode::package_unknown_target:
      return "package_unknown_target";
    case ErrorCode::package_corrupt:
      return "package_corrupt";
    case ErrorCode::graph_not_found:
      return "graph_not_found";
    case ErrorCode::guard_mismatch:
      return "guard_mismatch";
    case ErrorCode::no_specialization:
      return "no_specialization";
    case ErrorCode::recompile_required:
      return "recompile_required";
    case ErrorCode::kernel_load_failed:
      return "kernel_load_failed";
    case ErrorCode::cuda_unavailable:
      return "cuda_unavailable";
    case ErrorCode::internal:
      return "internal";
    case ErrorCode::cuda_error:
      return "cuda_error";
    case ErrorCode::jit_compile_failed:
      return "jit_compile_failed";
    case ErrorCode::profile_malformed:
      return "profile_malformed";
    case ErrorCode::library_unavailable:
      return "library_unavailable";
    case ErrorCode::untrusted_package:
      return "untrusted_package";
    case ErrorCode::cache_untrusted:
      return "cache_untrusted";
    case ErrorCode::resource_limit:
      return "resource_limit";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

namespace {

// One line per failed guard, prefixed by its specialization, so a reader
// sees for each candidate everything that kept it from running.
std::string describe_miss(std::string_view graph, std::string_view why,
                          const std::vector<GuardFailure>& failures) {
  std::string text = "kiln: graph '";
  text += graph;
  text += "' has no specialization for this call (";
  text += why;
  text += ")";
  if (failures.empty()) {
    text += ": the package has no specialization for this device and CPU";
    return text;
  }
  text += ':';
  for (const GuardFailure& f : failures) {
    text += "\n  ";
    text += f.specialization;
    text += ": ";
    text += f.subject;
    text += ": expected ";
    text += f.expected;
    text += ", got ";
    text += f.actual;
  }
  return text;
}

std::string describe_cuda_failure(std::string_view graph, std::string_view kernel,
                                  std::string_view message) {
  std::string text = "kiln:";
  if (!graph.empty()) {
    text += " graph '";
    text += graph;
    text += '\'';
  }
  if (!kernel.empty()) {
    text += graph.empty() ? " kernel '" : ", kernel '";
    text += kernel;
    text += '\'';
  }
  text += ' ';
  text += message;
  return text;
}

}  // namespace

UntrustedPackageError::UntrustedPackageError(Reason reason, std::string key_id,
                                             const std::string& message)
    : PackageError(ErrorCode::untrusted_package, message),
      reason_(reason),
      key_id_(std::move(key_id)) {}

RecompileError::RecompileError(std::string graph, std::vector<GuardFailure> failures)
    : Error(ErrorCode::recompile_required, describe_miss(graph, "fail_on_recompile", failures)),
      graph_(std::move(graph)),
      failures_(std::move(failures)) {}

NoSpecializationError::NoSpecializationError(std::string graph, std::vector<GuardFailure> failures,
                                             std::string_view reason)
    : Error(ErrorCode::no_specialization, describe_miss(graph, reason, failures)),
      graph_(std::move(graph)),
      failures_(std::move(failures)) {}

CudaError::CudaError(std::string graph, std::string kernel, int result, const std::string& message)
    : Error(ErrorCode::cuda_error, describe_cuda_failure(graph, kernel, message)),
      graph_(std::move(graph)),
      kernel_(std::move(kernel)),
      result_(result) {}

void detail::rethrow_as_error(std::string_view what, std::string_view name) {
  const std::string where = name.empty() ? detail::cat("kiln: ", what, ": ")
                                         : detail::cat("kiln: ", what, " '", name, "': ");
  try {
    throw;
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::resource_limit,
                where + "out of memory (an allocation the input asked for failed)");
  } catch (const std::exception& e) {
    throw Error(ErrorCode::internal, where + e.what());
  } catch (...) {
    throw Error(ErrorCode::internal, where + "an exception that is not a kiln::Error");
  }
}

}  // namespace kiln
