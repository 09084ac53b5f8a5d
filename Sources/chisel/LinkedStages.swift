import ChiselCore
import ChiselStages
import ColorMatch

/// Every stage target linked into `chisel`. To add your own, add its target to Package.swift's
/// `chisel` dependencies and one line here (see docs/custom-stages.md).
func makeRegistry() throws -> StageRegistry {
    var registry = StageRegistry()
    try BuiltinStages.register(in: &registry)
    try ColorMatch.register(in: &registry)
    return registry
}
