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
# The editing graphs, on the tiny random-weight test models at a small size (their outputs are
# noise-like; point --var model=PATH at a real checkpoint and drop the size for real edits).
for graph in samples/editing/*.json; do
  size=(--var width=64)
  # Only text-to-image has a height of its own; the edits take the input's aspect.
  if grep -q '"height"' "$graph"; then size+=(--var height=64); fi
  echo "== chisel run $graph ${size[*]}"
  "$chisel" run "$graph" "${size[@]}"
done
# The masked-token (aMUSEd) graphs, on the small random-weight test model.
for graph in samples/mvtm/*.json; do
  echo "== chisel run $graph"
  "$chisel" run "$graph"
done
echo "Outputs are in samples/out/"
