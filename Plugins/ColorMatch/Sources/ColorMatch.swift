import ChiselCore

/// The registration entry point of this stage target: `chisel` calls it once at start-up.
public enum ColorMatch {
    public static func register(in registry: inout StageRegistry) throws {
        try registry.register(ColorMatchStage.self)
    }
}
