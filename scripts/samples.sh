#!/usr/bin/env bash
# Installs what is missing, builds chisel (release) and runs every sample graph, then a batch
# over samples/batch. Outputs go to samples/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product chisel
chisel=".build/release/chisel"
for graph in samples/*.json; do
  echo "== chisel run $graph"
  "$chisel" run "$graph"
done
# In a batch, relative save paths resolve under --output: with --output samples they land where
# `chisel run` puts them, in samples/out/.
echo "== chisel batch samples/thumbnails.json --input samples/batch --output samples"
"$chisel" batch samples/thumbnails.json --input samples/batch --output samples --jobs 2 \
  --report samples/out/batch-report.jsonl --overwrite
echo "Outputs are in samples/out/"
