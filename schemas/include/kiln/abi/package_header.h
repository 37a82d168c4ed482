// The fixed header of a .kiln file. Its shape never changes: a reader of any
// version can read it and decide whether to go on. Since format 1.2 the
// header goes on with a signature block (KilnPackageSignature), inside
// header_size and so outside the checksum; docs/package-format.md.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_PACKAGE_MAGIC "KILNPKG" /* plus the terminating NUL: 8 bytes */
#define KILN_PACKAGE_FORMAT_MAJOR 1
#define KILN_PACKAGE_FORMAT_MINOR 2
#define KILN_PACKAGE_HEADER_SIZE 64 /* the fixed part: KilnPackageHeader */
/* Format 1.2: the signature block follows the fixed part, and the writer
   sets header_size to the two together. */
#define KILN_PACKAGE_SIGNATURE_OFFSET 64
#define KILN_PACKAGE_SIGNATURE_SIZE 128
#define KILN_PACKAGE_SIGNED_HEADER_SIZE 192
/* KilnPackageSignature.algorithm */
#define KILN_PACKAGE_UNSIGNED 0 /* and every other byte of the block zero */
#define KILN_PACKAGE_SIGNED_ED25519 1
#define KILN_PACKAGE_BLOB_ALIGNMENT 64

/* All fields little-endian. */
typedef struct KilnPackageHeader {
  char magic[8]; /* "KILNPKG\0" */
  uint16_t format_major;
  uint16_t format_minor;
  uint32_t header_size;     /* >= 64; a newer minor may grow it */
  uint64_t flags;           /* no flags are defined yet; unknown bits are ignored */
  uint64_t manifest_offset; /* absolute */
  uint64_t manifest_size;
  uint64_t file_size;   /* the whole file, header included */
  uint64_t checksum_lo; /* XXH3-128 of bytes [header_size, file_size) */
  uint64_t checksum_hi;
} KilnPackageHeader;

/* At KILN_PACKAGE_SIGNATURE_OFFSET when header_size >= KILN_PACKAGE_SIGNED_HEADER_SIZE.
   `signature` is the ed25519 signature by `public_key` of the header's bytes
   [0, header_size) with `signature` itself zeroed, followed by the manifest's
   bytes: the header binds the sizes and the checksum, the manifest every
   blob's hash. */
typedef struct KilnPackageSignature {
  uint32_t algorithm; /* KILN_PACKAGE_UNSIGNED or KILN_PACKAGE_SIGNED_ED25519 */
  uint32_t reserved;  /* 0 */
  uint8_t public_key[32];
  uint8_t signature[64];
  uint8_t reserved_tail[24]; /* 0 */
} KilnPackageSignature;

#ifdef __cplusplus
}
static_assert(sizeof(KilnPackageHeader) == KILN_PACKAGE_HEADER_SIZE);
static_assert(sizeof(KilnPackageSignature) == KILN_PACKAGE_SIGNATURE_SIZE);
static_assert(KILN_PACKAGE_SIGNATURE_OFFSET + KILN_PACKAGE_SIGNATURE_SIZE ==
              KILN_PACKAGE_SIGNED_HEADER_SIZE);
#endif
