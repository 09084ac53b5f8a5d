import ChiselCLI
import ColorMatch

// The stage targets linked into `chisel` beside the built-in and model stages. To add your
// own, add its target to Package.swift's `chisel` dependencies and its entry point here (or
// build your own executable from another package: see docs/custom-stages.md).
await ChiselCLI.main(stages: [ColorMatch.register])
