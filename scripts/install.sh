#!/usr/bin/env bash
# Builds chisel in release mode and installs it under a prefix (default /usr/local):
#   PREFIX/bin/chisel
#   PREFIX/share/chisel/Chisel_ChiselModels.resources         (the CLIP vocabulary)
#   PREFIX/share/chisel/Chisel_ChiselBundledModels.resources  (the bundled scene models)
#   PREFIX/share/man/man1/chisel.1                             (argument-parser's manual)
#   PREFIX/share/bash-completion/completions/chisel, PREFIX/share/zsh/site-functions/_chisel,
#   PREFIX/share/fish/vendor_completions.d/chisel.fish
#   PREFIX/share/doc/chisel/ (LICENSE, NOTICE, README.md, CHANGELOG.md)
# The binary finds its resources in ../share/chisel from its own folder, so the installed
# `chisel` edits with the bundled models from any folder. The Swift runtime is linked
# statically (--static-swift-stdlib): the installed binary needs no Swift toolchain, only the
# system libraries scripts/install-deps.sh installs (oneDNN, libpng, libjpeg-turbo).
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--skip-build]
#   scripts/install.sh [--prefix DIR] --uninstall
#
# --destdir stages the files under DIR/PREFIX (for packaging) while the installed layout stays
# PREFIX's. --uninstall removes exactly the files listed above and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
destdir=""
uninstall=0
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a folder}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --destdir) destdir="${2:?--destdir needs a folder}"; shift 2 ;;
    --destdir=*) destdir="${1#--destdir=}"; shift ;;
    --uninstall) uninstall=1; shift ;;
    --skip-build) build=0; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option '$1' (see scripts/install.sh --help)" >&2; exit 64 ;;
  esac
done
case "$prefix" in
  /*) ;;
  *) prefix="$(pwd)/$prefix" ;;
esac
prefix="${prefix%/}"
root="$destdir$prefix"

bundles=(Chisel_ChiselModels.resources Chisel_ChiselBundledModels.resources)
files=(
  "bin/chisel"
  "share/man/man1/chisel.1"
  "share/bash-completion/completions/chisel"
  "share/zsh/site-functions/_chisel"
  "share/fish/vendor_completions.d/chisel.fish"
  "share/doc/chisel/LICENSE"
  "share/doc/chisel/NOTICE"
  "share/doc/chisel/README.md"
  "share/doc/chisel/CHANGELOG.md"
)

if [ "$uninstall" -eq 1 ]; then
  for f in "${files[@]}"; do rm -f "$root/$f"; done
  for b in "${bundles[@]}"; do rm -rf "${root:?}/share/chisel/$b"; done
  # Only the folders this script made, and only when nothing else is left in them.
  for d in share/chisel share/doc/chisel; do rmdir "$root/$d" 2>/dev/null || true; done
  echo "removed chisel from $root"
  exit 0
fi

build_dir=.build/dist/release
if [ "$build" -eq 1 ]; then
  scripts/install-deps.sh
  # A scratch path of its own, so the static build does not rebuild the development one. The
  # toolchain's lld links: GNU gold would print glibc's link-time warning about mktemp for an
  # object of the static Foundation library (not Chisel's code, and not used by it).
  flags=(-c release --static-swift-stdlib -Xswiftc -use-ld=lld --scratch-path .build/dist)
  swift build "${flags[@]}" --product chisel
  # argument-parser's manual generator, from the same checkout of the dependency.
  swift build "${flags[@]}" --product generate-manual
fi
for needed in "$build_dir/chisel" "$build_dir/generate-manual" "${bundles[@]/#/$build_dir/}"; do
  [ -e "$needed" ] || { echo "error: $needed is missing: run without --skip-build" >&2; exit 1; }
done

staging="$(mktemp -d)"
trap 'rm -rf "$staging"' EXIT
# The installed binary writes its own completions and manual: what it says is what it parses.
mkdir -p "$staging/man"
"$build_dir/chisel" --generate-completion-script bash > "$staging/chisel.bash"
"$build_dir/chisel" --generate-completion-script zsh > "$staging/_chisel"
"$build_dir/chisel" --generate-completion-script fish > "$staging/chisel.fish"
"$build_dir/generate-manual" "$build_dir/chisel" --output-directory "$staging/man" \
  --date "$(git log -1 --format=%cs 2>/dev/null || date +%F)" --authors "the Chisel authors" > /dev/null
[ -s "$staging/man/chisel.1" ] || { echo "error: the manual was not generated" >&2; exit 1; }

install -d "$root/bin" "$root/share/chisel" "$root/share/man/man1" "$root/share/bash-completion/completions" \
  "$root/share/zsh/site-functions" "$root/share/fish/vendor_completions.d" "$root/share/doc/chisel"
# Stripped of its symbol tables and debug information (94 MB to 65 MB; the Swift runtime needs neither).
install -m 755 -s "$build_dir/chisel" "$root/bin/chisel"
for b in "${bundles[@]}"; do
  rm -rf "${root:?}/share/chisel/$b"
  cp -R "$build_dir/$b" "$root/share/chisel/$b"
  chmod -R u=rwX,go=rX "$root/share/chisel/$b"
done
install -m 644 "$staging/man/chisel.1" "$root/share/man/man1/chisel.1"
install -m 644 "$staging/chisel.bash" "$root/share/bash-completion/completions/chisel"
install -m 644 "$staging/_chisel" "$root/share/zsh/site-functions/_chisel"
install -m 644 "$staging/chisel.fish" "$root/share/fish/vendor_completions.d/chisel.fish"
install -m 644 LICENSE NOTICE README.md CHANGELOG.md "$root/share/doc/chisel/"
echo "installed chisel $("$root/bin/chisel" --version) in $root"
