#!/usr/bin/env bash
# Fails when a build log ($1) holds a compiler or linker warning from Chisel's own code (the
# dependencies' checkouts under .build/ and the Swift toolchain's static libraries, whose objects
# the linker quotes when it links them in, are not ours to fix). $2 names the build in the message.
# A clean build compiles every file, so CI, which builds a fresh clone, sees every warning.
set -euo pipefail
log=${1:?usage: check-warnings.sh BUILD_LOG [WHAT]}
what=${2:-the build}
warnings=$(grep -E '(^|: )warning: ' "$log" | grep -v -e '/\.build/' -e '/swift_static/' | sort -u || true)
if [ -n "$warnings" ]; then
  echo "error: $what printed $(printf '%s\n' "$warnings" | wc -l) warning(s); Chisel builds without warnings:" >&2
  printf '%s\n' "$warnings" >&2
  exit 1
fi
