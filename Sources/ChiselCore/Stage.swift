/// A step of a pipeline: a schema declared once and a function from inputs to outputs.
///
/// Stages are stateless types; everything a run needs arrives in the `StageCall`. Built-in and
/// custom stages register the same way, through `StageRegistry.register(_:)`.
public protocol Stage: Sendable {
    static var schema: StageSchema { get }

    /// Runs the stage; returns a value for every output port whose input requirement is met.
    static func run(_ call: StageCall) async throws -> [String: Value]

    /// The files the stage will write with these parameters, known before it runs. A batch
    /// skips an item whose planned files all exist already.
    static func plannedOutputFiles(_ call: StageCall) throws -> [String]
}

extension Stage {
    public static func plannedOutputFiles(_ call: StageCall) throws -> [String] { [] }
}
