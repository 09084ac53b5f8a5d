#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite, then the cluster
# samples on a one-node SLURM started here (scripts/cluster-test.sh; it needs root and says so).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then scripts/install-deps.sh --cluster; else scripts/install-deps.sh; fi
swift build --build-tests
swift test --skip-build
scripts/cluster-test.sh
