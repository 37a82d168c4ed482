#!/usr/bin/env bash
# `kiln verify` on damaged copies of a good package: each must exit 1 with the
# typed error of its damage, never crash.
# Usage: verify_corrupt.sh KILN PACKAGE WORK_DIR
set -euo pipefail
kiln="$1" package="$2" work="$3"
mkdir -p "$work"
size=$(stat -c %s "$package")

check() {  # check NAME EXPECTED_CODE
  local out rc=0
  out="$("$kiln" verify "$work/$1.kiln" 2>&1)" || rc=$?
  if [[ $rc -ne 1 ]]; then
    echo "$1: expected exit 1, got $rc: $out" >&2
    exit 1
  fi
  if [[ "$out" != *"error[$2]"* ]]; then
    echo "$1: expected error[$2], got: $out" >&2
    exit 1
  fi
  echo "$1: error[$2] as expected"
}

# Bad magic: the first byte.
cp "$package" "$work/bad_magic.kiln"
printf 'X' | dd of="$work/bad_magic.kiln" bs=1 seek=0 conv=notrunc status=none
check bad_magic package_bad_magic

# Truncated: the last 100 bytes gone.
head -c $((size - 100)) "$package" >"$work/truncated.kiln"
check truncated package_truncated

# One byte flipped in the middle: the checksum catches it.
cp "$package" "$work/flipped.kiln"
mid=$((size / 2))
old=$(od -An -tu1 -j "$mid" -N1 "$package" | tr -d ' ')
new=$(( (old + 1) % 256 ))
printf "$(printf '\\%03o' "$new")" | dd of="$work/flipped.kiln" bs=1 seek="$mid" conv=notrunc status=none
check flipped package_checksum_mismatch

# Newer major format version (bytes 8-9, little-endian).
cp "$package" "$work/newer_major.kiln"
printf '\x63\x00' | dd of="$work/newer_major.kiln" bs=1 seek=8 conv=notrunc status=none
check newer_major package_unsupported_version
echo "verify_corrupt: all damaged packages rejected"
