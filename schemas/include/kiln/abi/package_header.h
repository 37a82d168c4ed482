// The fixed header of a .kiln file. Its shape never changes: a reader of any
// version can read it and decide whether to go on.
#pragma once

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_PACKAGE_MAGIC "KILNPKG" /* plus the terminating NUL: 8 bytes */
#define KILN_PACKAGE_FORMAT_MAJOR 1
#define KILN_PACKAGE_FORMAT_MINOR 1
#define KILN_PACKAGE_HEADER_SIZE 64
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

#ifdef __cplusplus
}
static_assert(sizeof(KilnPackageHeader) == KILN_PACKAGE_HEADER_SIZE);
#endif
