#!/bin/sh
# Regenerates Tests/ChiselImageIOTests/Fixtures. Needs python3 (standard library only),
# a C compiler and the libjpeg development files (libjpeg62-turbo-dev on Debian 12).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../Tests/ChiselImageIOTests/Fixtures"
mkdir -p "$out"
python3 "$here/make_png_fixtures.py" "$out"
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cc -O2 -Wall -o "$build/make_jpeg_fixtures" "$here/make_jpeg_fixtures.c" -ljpeg
"$build/make_jpeg_fixtures" "$out"
