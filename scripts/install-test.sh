#!/usr/bin/env bash
# Installs Chisel as a user would and uses the installed files only:
#  1. scripts/install.sh --prefix into a temporary folder; from another folder, the installed
#     `chisel` prints its version, lists its stages and edits samples/scenes/day.png with the
#     bundled model (no --model); its completions and manual are installed and the manual
#     renders (man -l); --uninstall leaves the prefix empty;
#  2. scripts/package-deb.sh builds the .deb from the same build; dpkg -i installs it (apt-get
#     resolving what it depends on); the same checks run on /usr/bin/chisel; dpkg -r removes it
#     and every file it installed. Needs root; skipped (with a line saying so) otherwise.
# Called by scripts/test.sh. The release build (static Swift runtime) takes minutes the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
fail() { echo "install-test: FAILED: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/chisel-install.XXXXXX)
cleanup() {
  set +e
  if [ -n "${deb_installed:-}" ]; then dpkg -r chisel >/dev/null 2>&1; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Checks an installed chisel ($1) from a folder outside the checkout.
use() {
  local chisel=$1 folder
  folder=$(mktemp -d "$work/elsewhere.XXXXXX")
  cd "$folder"
  version=$("$chisel" --version) || fail "$chisel --version failed"
  [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] || fail "$chisel --version printed '$version'"
  stages=$("$chisel" stages) || fail "$chisel stages failed"
  grep -q '^denoise' <<< "$stages" || fail "$chisel stages does not list denoise"
  "$chisel" img2img --image "$repo/samples/scenes/day.png" --prompt "a snowy mountain at sunset" \
    --steps 8 --seed 3 --output edited.png --progress none > /dev/null || fail "$chisel img2img with the bundled model failed"
  [ -s edited.png ] || fail "$chisel img2img wrote no edited.png"
  "$chisel" run --from edited.png --print-graph > /dev/null || fail "$chisel run --from its own image failed"
  cd "$repo"
}

# 1. scripts/install.sh into a temporary prefix.
prefix="$work/prefix"
scripts/install.sh --prefix "$prefix" > "$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "scripts/install.sh"; }
scripts/check-warnings.sh "$work/install.log" "the release build (scripts/install.sh)"
use "$prefix/bin/chisel"
for f in share/man/man1/chisel.1 share/bash-completion/completions/chisel share/zsh/site-functions/_chisel \
         share/fish/vendor_completions.d/chisel.fish share/doc/chisel/LICENSE share/doc/chisel/NOTICE; do
  [ -s "$prefix/$f" ] || fail "$f was not installed"
done
grep -q 'img2img' "$prefix/share/bash-completion/completions/chisel" || fail "the bash completion does not know img2img"
if command -v man > /dev/null; then
  page=$(MANWIDTH=80 man -l -P cat "$prefix/share/man/man1/chisel.1" 2>/dev/null) || fail "man -l failed on the manual"
  grep -q 'img2img' <<< "$page" || fail "man -l does not show the manual's commands"
else
  head -c 200 "$prefix/share/man/man1/chisel.1" | grep -q '^\.Dd\|^\.TH' || fail "the manual is not a man page"
fi
scripts/install.sh --prefix "$prefix" --uninstall > /dev/null
left=$(find "$prefix" -type f | head -5)
[ -z "$left" ] || fail "--uninstall left files: $left"
echo "install-test: scripts/install.sh: installed, used from another folder and uninstalled"

# 2. The Debian package.
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test: the .deb test skipped: dpkg -i needs root" >&2
  exit 0
fi
if dpkg -s chisel > /dev/null 2>&1; then fail "a chisel package is already installed; remove it first (dpkg -r chisel)"; fi
[ ! -e /usr/bin/chisel ] || fail "/usr/bin/chisel exists and is not from a package"
deb=$(scripts/package-deb.sh --skip-build --output "$work/deb")
[ -s "$deb" ] || fail "scripts/package-deb.sh made no package"
dpkg-deb --field "$deb" Depends | grep -q 'libdnnl' || fail "the package does not depend on oneDNN"
deb_installed=1
if ! dpkg -i "$deb" > "$work/dpkg.log" 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq >> "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i / apt-get -f install"; }
fi
dpkg -s chisel | grep -q '^Status: install ok installed' || fail "dpkg does not list chisel as installed"
dpkg -L chisel > "$work/files"
use /usr/bin/chisel
dpkg -r chisel > /dev/null || fail "dpkg -r chisel"
deb_installed=""
while read -r f; do
  [ -f "$f" ] && fail "dpkg -r left $f"
done < "$work/files"
[ ! -e /usr/share/chisel ] || fail "dpkg -r left /usr/share/chisel"
echo "install-test: $(basename "$deb"): installed with dpkg, used, removed cleanly"
