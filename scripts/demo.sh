#!/usr/bin/env bash
# The first command: installs what is missing, builds chisel (release) and edits the bundled
# scenes (samples/scenes/) with the bundled scene models, nothing downloaded. Outputs and a
# contact sheet of inputs next to outputs go to samples/out/demo/ (look at contact-sheet.png).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product chisel
chisel=".build/release/chisel"
in=samples/scenes
out=samples/out/demo
mkdir -p "$out"
run() { echo "== chisel $*"; "$chisel" "$@"; }
for model in builtin:scenes builtin:scenes-mvtm; do
  if ! "$chisel" model inspect "$model" > /dev/null 2>&1; then
    echo "error: this build carries no $model model (see docs/models.md#built-in-models); set CHISEL_MODELS to a folder with scenes-sd/ and scenes-mvtm/" >&2
    exit 1
  fi
done
# SDEdit of a stroke painting into a scene, at two strengths.
strokes_prompt="a snowy mountain on a sunny day above a lake with five pine trees and a blue house"
for strength in 0.5 0.8; do
  run img2img --image "$in/strokes.png" --prompt "$strokes_prompt" --strength "$strength" --steps 25 --guidance 4 \
    --seed 1 --output "$out/strokes-$strength.png"
done
# A prompt-driven edit: the same scene at sunset.
run img2img --image "$in/day.png" --prompt "a mountain at sunset with a blue house" --strength 0.6 --steps 25 \
  --guidance 4 --seed 2 --output "$out/day-to-sunset.png"
# Inpainting of a masked object (the house), with the SD model and with the masked-token model.
run inpaint --image "$in/day.png" --mask "$in/house-mask.png" --prompt "a mountain in daylight" --strength 1 \
  --steps 25 --guidance 4 --seed 3 --output "$out/house-removed-sd.png"
# The masked-token model re-predicts the fill's tokens by Mask-Predict (docs/mvtm.md).
run inpaint --model builtin:scenes-mvtm --image "$in/day.png" --mask "$in/house-mask.png" \
  --prompt "a mountain in daylight" --token-mode refine --masked-content fill --seed 3 \
  --output "$out/house-removed-mvtm.png"
# Mask-predict refinement of a damaged image, and where the model found it implausible.
run refine --image "$in/damaged.png" --prompt "mountains at sunset above a lake" --output "$out/damaged-refined.png" \
  --found-output "$out/damaged-found.png"
# A batch over a small folder: every scene at sunset, into $out (a batch writes under its --output).
run batch "$in/to-sunset.json" --input "$in/batch" --output "$out" --set "save.path={stem}-sunset.png" --jobs 1 --overwrite \
  --report "$out/batch-report.jsonl"
run sheet --columns 4 --cell 192 --title "chisel demo: bundled scene models, nothing downloaded" \
  "$in/strokes.png" "$out/strokes-0.5.png" "$out/strokes-0.8.png" "$in/day.png" \
  --label "input: stroke painting" --label "SDEdit strength 0.5" --label "SDEdit strength 0.8" --label "input: day" \
  "$out/day-to-sunset.png" "$in/house-mask.png" "$out/house-removed-sd.png" "$out/house-removed-mvtm.png" \
  --label "img2img 0.6: at sunset" --label "mask: the house" --label "inpaint, SD model" --label "inpaint, MVTM model" \
  "$in/damaged.png" "$out/damaged-refined.png" "$out/damaged-found.png" "$in/batch/scene-1.png" \
  --label "input: damaged" --label "refined (mask-predict)" --label "found implausible" --label "batch input 1" \
  "$out/scene-1-sunset.png" "$out/scene-2-sunset.png" "$out/scene-3-sunset.png" "$out/scene-4-sunset.png" \
  --label "batch: 1 at sunset" --label "batch: 2 at sunset" --label "batch: 3 at sunset" --label "batch: 4 at sunset" \
  --output "$out/contact-sheet.png"
echo "Outputs are in $out/; look at $out/contact-sheet.png first"
