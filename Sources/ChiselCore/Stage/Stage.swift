/// A step of a pipeline: a schema declared once and a function from inputs to outputs.
///
/// Stages are stateless types; everything a run needs arrives in the `StageCall`. Parameters and
/// ports are declared once as typed keys (`Param`, `Input`, `OptionalInput`, `ModelInput`,
/// `Output`) that both the schema and `run` use. Built-in and custom stages register the same
/// way, through `StageRegistry.register(_:)`.
public protocol Stage: Sendable {
    static var schema: StageSchema { get }

    /// Checks rules that involve several parameters, or parameters and inputs, before anything
    /// runs; `chisel validate` reports what it finds with the node and JSON path. Called only
    /// when every parameter of the node has a valid value. A thrown error is reported for the node.
    static func validate(_ check: inout StageCheck) throws

    /// Runs the stage; returns a value for every output port whose input requirement is met.
    static func run(_ call: StageCall) async throws -> StageOutputs

    /// The files the stage will write with these parameters, known before it runs. A batch
    /// skips an item whose planned files all exist already.
    static func plannedOutputFiles(_ call: StageCall) throws -> [String]
}

extension Stage {
    public static func validate(_ check: inout StageCheck) throws {}

    public static func plannedOutputFiles(_ call: StageCall) throws -> [String] { [] }
}
