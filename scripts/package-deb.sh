#!/usr/bin/env bash
# Builds the Debian package chisel_VERSION_amd64.deb with dpkg-deb (no network): what
# scripts/install.sh installs, under /usr. The Swift runtime is linked statically
# (--static-swift-stdlib), because Debian 12 packages no Swift runtime for it to depend on and
# bundling the toolchain's shared libraries would put a private copy of them in /usr/lib. The
# package depends on the system libraries the binary links, named by the Debian packages that
# hold them on the building machine (dpkg -S): oneDNN (libdnnl2), libpng16-16,
# libjpeg62-turbo and the C and C++ runtimes.
#
#   scripts/package-deb.sh [--output DIR] [--skip-build]
#
# Writes DIR/chisel_VERSION_amd64.deb (default DIR: .build/dist) and prints its path.
# Install with `apt-get install ./chisel_VERSION_amd64.deb` (or dpkg -i, then apt-get -f
# install for the dependencies); remove with `dpkg -r chisel`.
set -euo pipefail
cd "$(dirname "$0")/.."

output=.build/dist
build=()
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="${2:?--output needs a folder}"; shift 2 ;;
    --output=*) output="${1#--output=}"; shift ;;
    --skip-build) build=(--skip-build); shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option '$1' (see scripts/package-deb.sh --help)" >&2; exit 64 ;;
  esac
done
for tool in dpkg-deb dpkg ldd readelf; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (a Debian system has it)" >&2; exit 1; }
done

version=$(sed -n 's/^ *public static let number = "\(.*\)"$/\1/p' Sources/ChiselBase/Version.swift)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "error: no version in Sources/ChiselBase/Version.swift" >&2; exit 1; }
architecture=$(dpkg --print-architecture)

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
scripts/install.sh --prefix /usr --destdir "$root" "${build[@]}" > /dev/null

# The packages holding the shared libraries the binary itself needs (its ELF NEEDED entries,
# resolved through the system's library path as the installed binary will resolve them; what
# those libraries need, their own packages depend on).
binary="$root/usr/bin/chisel"
packages=()
needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
[ -n "$needed" ] || { echo "error: readelf found no shared libraries in $binary" >&2; exit 1; }
while read -r library; do
  case "$library" in
    */swift/*) echo "error: $binary links the Swift toolchain's $library: build with --static-swift-stdlib" >&2; exit 1 ;;
  esac
  real=$(readlink -f "$library")
  owner=""
  for candidate in "$library" "$real" "/usr$library" "/usr$real" "${library#/usr}" "${real#/usr}"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -1 | cut -d: -f1) && [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || { echo "error: no Debian package holds $library" >&2; exit 1; }
  packages+=("$owner")
done < <(ldd "$binary" | awk -v needed="$needed" 'BEGIN { split(needed, n, "\n"); for (i in n) want[n[i]] = 1 }
                                                  $1 in want && $3 ~ /^\// { print $3 }')
depends=$(printf '%s\n' "${packages[@]}" | sort -u | paste -sd, | sed 's/,/, /g')

mkdir -p "$root/DEBIAN"
cat > "$root/DEBIAN/control" <<EOF
Package: chisel
Version: $version
Architecture: $architecture
Maintainer: The Chisel authors <chisel@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: graphics
Priority: optional
Description: image editing with diffusion models, as JSON pipelines of stages
 Chisel edits images with Stable Diffusion (SDEdit / img2img, inpainting, ControlNet)
 and aMUSEd-style masked-token models, as graphs of stages declared in JSON, on one
 image or whole folders, on the CPU. It reads diffusers folders and single-file
 checkpoints, writes AUTOMATIC1111's and ComfyUI's metadata, and ships two small scene
 models trained by the project, so "chisel img2img --image IN.png --prompt TEXT" works
 with nothing downloaded.
EOF
# Debian's place for the terms: the license and the third-party notices.
cat LICENSE NOTICE > "$root/usr/share/doc/chisel/copyright"
(cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"

mkdir -p "$output"
deb="$output/chisel_${version}_${architecture}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" > /dev/null
echo "$deb"
