#!/usr/bin/env bash
# Installs the system packages Chisel builds against (Debian/Ubuntu), only if missing.
# --cluster adds what scripts/cluster-test.sh runs on: a one-node SLURM (slurm-wlm, munge) and
# python3-yaml to read the Kubernetes sample.
set -euo pipefail
packages=(libpng-dev libjpeg-dev libdnnl-dev pkg-config)
if [ "${1:-}" = "--cluster" ]; then packages+=(slurm-wlm munge python3-yaml); fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
