#include "kiln/package_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "api_boundary.h"
#include "kiln/error.h"
#include "kiln/support/hex.h"
#include "manifest_validation.h"
#include "package_signature.h"
#include "text.h"
#include "xxh3.h"

namespace kiln {

static_assert(std::endian::native == std::endian::little,
              "the .kiln header is little-endian and read in place");

namespace {

using detail::cat;

constexpr size_t kStorageAlignment = KILN_PACKAGE_BLOB_ALIGNMENT;
// Larger blobs are refused rather than allocated: a corrupt raw_size must
// not become a huge allocation.
constexpr uint64_t kMaxBlobRawSize = uint64_t{1} << 36;

struct AlignedDelete {
  void operator()(std::byte* p) const noexcept {
    ::operator delete[](p, std::align_val_t(kStorageAlignment));
  }
};
using AlignedBytes = std::unique_ptr<std::byte[], AlignedDelete>;

AlignedBytes allocate_aligned(size_t size) {
  return AlignedBytes(static_cast<std::byte*>(
      ::operator new[](size == 0 ? 1 : size, std::align_val_t(kStorageAlignment))));
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) {
  throw PackageError(code, message);
}

enum class BlobState : uint8_t { unchecked, ok };

}  // namespace

struct PackageReader::State {
  AlignedBytes owned;
  std::span<const std::byte> bytes;
  KilnPackageHeader header{};
  const fb::Manifest* manifest = nullptr;
  std::optional<PackageSigner> signer;

  // Guards blob_state and decoded; a blob is decoded once, then read
  // without the lock by whoever holds the span.
  std::mutex blob_mutex;
  std::vector<BlobState> blob_state;
  std::vector<std::vector<std::byte>> decoded;

  void verify(const PackageLimits& limits);
};

namespace {

// The header's own checks, on the file's first bytes (`prefix`, at least
// the whole header when the file has it) and the file's size: what
// open_file() needs to know before it allocates the file.
KilnPackageHeader check_header(std::span<const std::byte> prefix, uint64_t actual_size,
                               const PackageLimits& limits) {
  KilnPackageHeader header{};
  constexpr size_t kMagicSize = sizeof(header.magic);
  if (prefix.size() < kMagicSize) {
    fail(ErrorCode::package_truncated, cat("kiln: package is truncated: ", actual_size,
                                           " bytes, too short for the 8-byte magic"));
  }
  if (std::memcmp(prefix.data(), KILN_PACKAGE_MAGIC, kMagicSize) != 0) {
    fail(ErrorCode::package_bad_magic,
         "kiln: not a Kiln package: the file does not start with \"KILNPKG\\0\"");
  }
  if (prefix.size() < KILN_PACKAGE_HEADER_SIZE) {
    fail(ErrorCode::package_truncated,
         cat("kiln: package is truncated: expected at least the ", KILN_PACKAGE_HEADER_SIZE,
             "-byte header, got ", actual_size, " bytes"));
  }
  std::memcpy(&header, prefix.data(), sizeof(header));
  if (header.format_major != KILN_PACKAGE_FORMAT_MAJOR) {
    fail(ErrorCode::package_unsupported_version,
         cat("kiln: package format ", header.format_major, ".", header.format_minor,
             " is not supported by this runtime, which reads format ", KILN_PACKAGE_FORMAT_MAJOR,
             ".x (up to ", KILN_PACKAGE_FORMAT_MAJOR, ".", KILN_PACKAGE_FORMAT_MINOR, " fully); ",
             header.format_major > KILN_PACKAGE_FORMAT_MAJOR ? "upgrade the runtime"
                                                             : "rebuild the package"));
  }
  if (header.file_size != actual_size) {
    if (header.file_size > actual_size) {
      fail(ErrorCode::package_truncated, cat("kiln: package is truncated: the header says ",
                                             header.file_size, " bytes, got ", actual_size));
    }
    fail(ErrorCode::package_corrupt, cat("kiln: package has trailing bytes: the header says ",
                                         header.file_size, " bytes, got ", actual_size));
  }
  if (actual_size > limits.max_file_bytes) {
    fail(ErrorCode::resource_limit,
         cat("kiln: package is ", actual_size, " bytes, over the limit of ", limits.max_file_bytes,
             " (PackageLimits::max_file_bytes)"));
  }
  if (header.header_size < KILN_PACKAGE_HEADER_SIZE || header.header_size > actual_size) {
    fail(ErrorCode::package_corrupt,
         cat("kiln: package header_size ", header.header_size, " is not in [",
             KILN_PACKAGE_HEADER_SIZE, ", ", actual_size, "]"));
  }
  const uint64_t manifest_offset = header.manifest_offset;
  const uint64_t manifest_size = header.manifest_size;
  if (manifest_offset < header.header_size || manifest_offset > actual_size ||
      manifest_size > actual_size - manifest_offset || manifest_size < 8 ||
      manifest_size >= FLATBUFFERS_MAX_BUFFER_SIZE || manifest_offset % 8 != 0) {
    fail(ErrorCode::package_corrupt, cat("kiln: package manifest range [", manifest_offset, ", +",
                                         manifest_size, ") is not an 8-aligned range inside the ",
                                         actual_size, "-byte file after its header"));
  }
  return header;
}

// The bytes the package's compressed blobs decompress to, all together,
// against the limit: checked at open, so that no manifest makes the reader
// allocate more, however small the file.
void check_decompressed_total(const fb::Manifest& manifest, const PackageLimits& limits) {
  if (manifest.blobs() == nullptr) return;
  uint64_t total = 0;
  for (const fb::Blob* blob : *manifest.blobs()) {
    if (blob->compression() == fb::Compression::None) continue;
    if (__builtin_add_overflow(total, blob->raw_size(), &total)) total = UINT64_MAX;
  }
  if (total > limits.max_decompressed_bytes) {
    fail(ErrorCode::resource_limit,
         cat("kiln: package blobs decompress to ", total, " bytes in all, over the limit of ",
             limits.max_decompressed_bytes, " (PackageLimits::max_decompressed_bytes)"));
  }
}

}  // namespace

void PackageReader::State::verify(const PackageLimits& limits) {
  const uint64_t actual_size = bytes.size();
  header = check_header(bytes, actual_size, limits);
  const uint64_t manifest_offset = header.manifest_offset;
  const uint64_t manifest_size = header.manifest_size;

  const detail::Xxh3Hash128 checksum =
      detail::xxh3_128(bytes.data() + header.header_size, actual_size - header.header_size);
  if (checksum.lo != header.checksum_lo || checksum.hi != header.checksum_hi) {
    fail(
        ErrorCode::package_checksum_mismatch,
        cat("kiln: package checksum mismatch: the header says ",
            support::hex_literal(header.checksum_hi), ":", support::hex_literal(header.checksum_lo),
            ", the contents hash to ", support::hex_literal(checksum.hi), ":",
            support::hex_literal(checksum.lo), " (the file is damaged)"));
  }

  // After the checksum, so damage reads as damage; before the manifest is
  // parsed, so a signed package's manifest is read only when it is the one
  // that was signed.
  signer = detail::verify_package_signature(bytes, header);

  const auto* manifest_bytes = reinterpret_cast<const uint8_t*>(bytes.data() + manifest_offset);
  flatbuffers::Verifier verifier(manifest_bytes, manifest_size);
  if (!fb::VerifyManifestBuffer(verifier)) {
    fail(ErrorCode::package_verifier_failed,
         cat("kiln: package manifest (", manifest_size,
             " bytes) failed the FlatBuffers verifier or lacks the \"KILN\" identifier"));
  }
  manifest = fb::GetManifest(manifest_bytes);
  detail::validate_manifest(*manifest,
                            {header.header_size, manifest_offset, manifest_size, actual_size});
  check_decompressed_total(*manifest, limits);
  if (signer) detail::require_blob_digests(*manifest, *signer);

  const size_t blob_count = manifest->blobs() ? manifest->blobs()->size() : 0;
  blob_state.assign(blob_count, BlobState::unchecked);
  decoded.resize(blob_count);
}

PackageReader::PackageReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
PackageReader::PackageReader(PackageReader&&) noexcept = default;
PackageReader& PackageReader::operator=(PackageReader&&) noexcept = default;
PackageReader::~PackageReader() = default;

PackageReader PackageReader::open_file(const std::filesystem::path& path,
                                       const PackageLimits& limits) {
  return detail::translate_exceptions("open", "", [&] {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      throw Error(ErrorCode::io,
                  cat("kiln: cannot open package '", path.string(), "': ", std::strerror(errno)));
    }
    struct FdCloser {
      int fd;
      ~FdCloser() { ::close(fd); }
    } closer{fd};
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      throw Error(ErrorCode::io, cat("kiln: package '", path.string(), "' is not a regular file"));
    }
    // Reads up to `size` bytes at `out`; fewer only at the end of the file.
    auto read_into = [&](std::byte* out, size_t size) {
      size_t done = 0;
      while (done < size) {
        const ssize_t n = ::read(fd, out + done, size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          throw Error(ErrorCode::io, cat("kiln: cannot read package '", path.string(),
                                         "': ", std::strerror(errno)));
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
      }
      return done;
    };
    // The header first: a file that is not a package, or whose header
    // claims another size or more than the limit, is refused before the
    // file is allocated.
    std::byte prefix[KILN_PACKAGE_HEADER_SIZE];
    const size_t prefix_size = read_into(prefix, sizeof(prefix));
    const uint64_t file_size = static_cast<uint64_t>(info.st_size);
    const KilnPackageHeader header =
        check_header(std::span(prefix, prefix_size), file_size, limits);
    auto state = std::make_unique<State>();
    state->owned = allocate_aligned(header.file_size);
    std::memcpy(state->owned.get(), prefix, prefix_size);
    // At most file_size bytes: a file that grew since fstat() is read no
    // further, one that shrank is short, and verify() names the difference.
    const size_t rest = read_into(state->owned.get() + prefix_size, header.file_size - prefix_size);
    state->bytes = {state->owned.get(), prefix_size + rest};
    state->verify(limits);
    return PackageReader(std::move(state));
  });
}

PackageReader PackageReader::open_memory(std::span<const std::byte> bytes,
                                         const PackageLimits& limits) {
  return detail::translate_exceptions("open", "", [&] {
    // The header's checks before the copy: its size is then known to be
    // within the limit.
    check_header(bytes, bytes.size(), limits);
    auto state = std::make_unique<State>();
    state->owned = allocate_aligned(bytes.size());
    std::memcpy(state->owned.get(), bytes.data(), bytes.size());
    state->bytes = {state->owned.get(), bytes.size()};
    state->verify(limits);
    return PackageReader(std::move(state));
  });
}

PackageReader PackageReader::open_borrowed(std::span<const std::byte> bytes,
                                           const PackageLimits& limits) {
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 16 != 0) return open_memory(bytes, limits);
  return detail::translate_exceptions("open", "", [&] {
    auto state = std::make_unique<State>();
    state->bytes = bytes;
    state->verify(limits);
    return PackageReader(std::move(state));
  });
}

const KilnPackageHeader& PackageReader::header() const noexcept { return state_->header; }
const fb::Manifest& PackageReader::manifest() const noexcept { return *state_->manifest; }
std::span<const std::byte> PackageReader::file_bytes() const noexcept { return state_->bytes; }
const std::optional<PackageSigner>& PackageReader::signer() const noexcept {
  return state_->signer;
}

std::span<const std::byte> PackageReader::stored_blob(uint32_t index) const {
  const auto* blobs = state_->manifest->blobs();
  if (blobs == nullptr || index >= blobs->size()) {
    throw Error(ErrorCode::invalid_argument, cat("kiln: blob index ", index, " out of range"));
  }
  const fb::Blob* blob = blobs->Get(index);
  // validate_manifest() has checked the range.
  return state_->bytes.subspan(blob->offset(), blob->stored_size());
}

std::span<const std::byte> PackageReader::blob(uint32_t index) const {
  return detail::translate_exceptions("blob", "", [&] { return decode_blob(index); });
}

std::span<const std::byte> PackageReader::decode_blob(uint32_t index) const {
  std::span<const std::byte> stored = stored_blob(index);
  const fb::Blob* blob = state_->manifest->blobs()->Get(index);
  State& s = *state_;
  std::lock_guard lock(s.blob_mutex);
  if (s.blob_state[index] == BlobState::ok) {
    return blob->compression() == fb::Compression::None
               ? stored
               : std::span<const std::byte>(s.decoded[index]);
  }
  const detail::Xxh3Hash128 hash = detail::xxh3_128(stored.data(), stored.size());
  const fb::Hash128* expected = blob->hash();
  if (expected == nullptr || hash.lo != expected->lo() || hash.hi != expected->hi()) {
    fail(ErrorCode::package_checksum_mismatch,
         cat("kiln: blob ", index, " (", stored.size(), " bytes at offset ", blob->offset(),
             ") does not match its hash: the package is damaged"));
  }
  // Before the bytes are decompressed or handed out: in a signed package
  // the digest, not XXH3, is what binds them to the signature.
  detail::check_blob_digest(*blob, index, stored, s.signer);
  if (blob->compression() == fb::Compression::None) {
    s.blob_state[index] = BlobState::ok;
    return stored;
  }
  const uint64_t raw_size = blob->raw_size();
  unsigned long long frame_size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (frame_size != raw_size || raw_size > kMaxBlobRawSize) {
    fail(ErrorCode::package_corrupt,
         cat("kiln: blob ", index, ": the zstd frame holds ",
             frame_size >= ZSTD_CONTENTSIZE_ERROR ? std::string("an unknown size")
                                                  : cat(frame_size, " bytes"),
             ", the manifest says raw_size ", raw_size));
  }
  std::vector<std::byte> out(raw_size);
  size_t written = ZSTD_decompress(out.data(), out.size(), stored.data(), stored.size());
  if (ZSTD_isError(written) || written != raw_size) {
    fail(ErrorCode::package_corrupt,
         cat("kiln: blob ", index, " does not decompress to its raw_size ", raw_size, ": ",
             ZSTD_isError(written) ? ZSTD_getErrorName(written) : "size differs"));
  }
  s.decoded[index] = std::move(out);
  s.blob_state[index] = BlobState::ok;
  return s.decoded[index];
}

void PackageReader::verify_all_blobs() const {
  const auto* blobs = state_->manifest->blobs();
  const uint32_t count = blobs ? blobs->size() : 0;
  for (uint32_t i = 0; i < count; ++i) blob(i);
}

}  // namespace kiln
