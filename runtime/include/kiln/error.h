/// @file
/// Typed errors of the runtime. Every failure a caller can cause or meet
/// (a bad package, a bad tensor, a missing kernel) is one of these, never an
/// abort, so a server can log it and go on.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// What went wrong: Error::code(). Values are stable (new ones are appended).
enum class ErrorCode : uint8_t {
  invalid_argument,
  io,
  package_bad_magic,
  package_unsupported_version,
  package_truncated,
  package_checksum_mismatch,
  package_verifier_failed,
  package_unknown_target,
  package_corrupt,
  graph_not_found,
  guard_mismatch,
  no_specialization,
  recompile_required,
  kernel_load_failed,
  cuda_unavailable,
  internal,
  cuda_error,  ///< appended: the values above are stable
  jit_compile_failed,
  profile_malformed,  ///< a .kprof file a recording would merge into is not a profile
  /// A vendor library a launch plan calls (cuBLASLt for a gemm) cannot be
  /// loaded; the rest of the package still runs.
  library_unavailable,
  /// The trust policy refused the package (UntrustedPackageError): unsigned
  /// or signed by a key that is not trusted while trusted keys are set, or a
  /// signature that does not verify (the package changed after signing).
  untrusted_package,
  /// The JIT's cache directory is not one it may run code from: owned by
  /// another user, writable by others, reached through another user's
  /// symlink or directory, with a bad MAC key file, or not Kiln's.
  cache_untrusted,
  /// Input asks for more than a limit allows (a package whose blobs would
  /// decompress past OpenOptions::limits, a file over its size cap) or the
  /// memory it needs cannot be allocated.
  resource_limit,
};

/// "package_checksum_mismatch", ...: stable names for logs and the CLI.
std::string_view error_code_name(ErrorCode code);

/// Every error the runtime throws: what() is the message, code() the kind.
class Error : public std::runtime_error {
 public:
  /// An error of kind `code`; what() returns `message`.
  Error(ErrorCode code, const std::string& message);
  /// The kind of error.
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

/// Anything wrong with the bytes of a package: magic, version, sizes,
/// checksums, the FlatBuffers verifier, or a manifest that contradicts itself.
class PackageError : public Error {
 public:
  using Error::Error;
};

/// A package the trust policy refuses (OpenOptions::trusted_keys,
/// KILN_TRUSTED_KEYS; docs/runtime.md). code() is untrusted_package; what()
/// names the signer's key id and the trusted keys.
class UntrustedPackageError : public PackageError {
 public:
  /// Why the package is refused.
  enum class Reason : uint8_t {
    unsigned_package,  ///< trusted keys are set and the package has no signature
    unknown_key,       ///< signed (validly) by a key that is not among the trusted ones
    bad_signature,     ///< its signature does not verify: changed after signing
  };
  /// `key_id` is the signer's (empty for an unsigned package).
  UntrustedPackageError(Reason reason, std::string key_id, const std::string& message);
  /// Why the package is refused.
  Reason reason() const noexcept { return reason_; }
  /// The key id (16 hex digits) the package says signed it; empty when unsigned.
  const std::string& key_id() const noexcept { return key_id_; }

 private:
  Reason reason_;
  std::string key_id_;
};

/// One guard of one specialization that the call's tensors did not pass.
struct GuardFailure {
  std::string specialization;  ///< "general", "n=8"
  std::string subject;         ///< "x.shape[0]", "x.dtype", "symbol n", "out0.strides"
  /// What the specialization needs ("n in [1, 1048576]", "bf16").
  std::string expected;
  /// What the call passed.
  std::string actual;
};

/// A call matched no specialization and the stance is fail_on_recompile.
class RecompileError : public Error {
 public:
  /// code() is recompile_required; what() lists the failures.
  RecompileError(std::string graph, std::vector<GuardFailure> failures);
  /// The graph called.
  const std::string& graph() const noexcept { return graph_; }
  /// The guards that failed, per specialization.
  const std::vector<GuardFailure>& failures() const noexcept { return failures_; }

 private:
  std::string graph_;
  std::vector<GuardFailure> failures_;
};

/// A call matched no specialization and nothing could compile one (no JIT is
/// linked, or the JIT declined).
class NoSpecializationError : public Error {
 public:
  /// code() is no_specialization; `reason` says why nothing compiled one.
  NoSpecializationError(std::string graph, std::vector<GuardFailure> failures,
                        std::string_view reason = "no JIT compiler is linked");
  /// The graph called.
  const std::string& graph() const noexcept { return graph_; }
  /// The guards that failed, per specialization.
  const std::vector<GuardFailure>& failures() const noexcept { return failures_; }

 private:
  std::string graph_;
  std::vector<GuardFailure> failures_;
};

/// A CUDA driver call failed while running a graph: a launch that the driver
/// refused, or a fault (illegal address, ...) reported by the stream. Names the
/// graph and the kernel, so a log line points at generated code.
class CudaError : public Error {
 public:
  /// what() is "kiln: graph 'G', kernel 'K' " + message, where the message
  /// says where and what failed: "on cuda:0: cuLaunchKernel failed: ...".
  /// An empty graph or kernel is left out.
  CudaError(std::string graph, std::string kernel, int result, const std::string& message);
  /// The graph whose call failed.
  const std::string& graph() const noexcept { return graph_; }
  /// The kernel whose launch failed.
  const std::string& kernel() const noexcept { return kernel_; }
  int result() const noexcept { return result_; }  ///< the CUresult

 private:
  std::string graph_;
  std::string kernel_;
  int result_;
};

}  // namespace kiln
