#!/usr/bin/env bash
# Installs what is missing, builds everything (failing on any compiler warning in Chisel's own
# code), runs the whole test suite, then the cluster samples on a one-node SLURM started here
# (scripts/cluster-test.sh; it needs root and says so), then installs Chisel as a user would:
# scripts/install.sh into a temporary prefix and the Debian package (scripts/install-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then scripts/install-deps.sh --cluster; else scripts/install-deps.sh; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift build --build-tests 2>&1 | tee "$log"
scripts/check-warnings.sh "$log" "swift build --build-tests"
swift test --skip-build
scripts/cluster-test.sh
scripts/install-test.sh
