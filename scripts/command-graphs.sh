#!/bin/sh
# Writes samples/commands/NAME.json: the graph each command line of samples/commands/commands.json
# prints with --print-graph, its paths relative to samples/commands/ so that the file runs as
# `chisel run samples/commands/NAME.json`. CLIDocsTests checks that the commands still print them.
# Usage: scripts/command-graphs.sh [path/to/chisel]   (run from the repository root)
set -eu
chisel=${1:-.build/debug/chisel}
root=$(pwd)
python3 - "$chisel" "$root" <<'PY'
import json, subprocess, sys
chisel, root = sys.argv[1], sys.argv[2]
commands = json.load(open("samples/commands/commands.json"))
for name, args in commands.items():
    out = subprocess.run([chisel] + args + ["--print-graph"], check=True, capture_output=True, text=True).stdout
    out = out.replace(root + "/samples/", "../")
    with open(f"samples/commands/{name}.json", "w") as f:
        f.write(out if out.endswith("\n") else out + "\n")
    print(f"wrote samples/commands/{name}.json")
PY
