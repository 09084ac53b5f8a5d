import ChiselCore
import Foundation
import Testing

// MARK: - Calling stages

/// The events a stage reported while it ran.
public final class EventLog: Sendable {
    public init() {}
    private let events = Locked<[RunEvent]>([])

    public var sink: RunEventSink { { [events] event in events.withLock { $0.append(event) } } }
    public var all: [RunEvent] { events.value }

    public var warnings: [String] {
        all.compactMap { if case .warning(_, let message) = $0 { message } else { nil } }
    }

    public var written: [String] {
        all.compactMap { if case .fileWritten(_, let path) = $0 { path } else { nil } }
    }
}

/// A call of `stage` with its schema's defaults, then `params`, and `inputs` connected.
///
/// Parameters and inputs are typed keys (`ResizeStage.width(4)`, `ResizeStage.image(image)`), so a
/// renamed parameter or a value of the wrong type does not compile.
public func makeCall(_ stage: any Stage.Type, params: [ParamSetting] = [], inputs: [InputSetting] = [],
              run info: RunInfo = RunInfo(), files: FileLedger = FileLedger(), node: String = "n",
              events: EventLog? = nil) -> StageCall {
    var sink: RunEventSink = { _ in }
    if let events { sink = events.sink }
    let context = StageContext(node: node, run: info, files: files, events: sink)
    return StageCall(stage, node: node, params: params, inputs: inputs, context: context)
}

/// Runs `stage` once and checks that it returned exactly the outputs its schema promises for
/// the connected inputs; returns them by wire name.
@discardableResult
public func runStage(_ stage: any Stage.Type, params: [ParamSetting] = [], inputs: [InputSetting] = [],
              run info: RunInfo = RunInfo(), files: FileLedger = FileLedger(), node: String = "n",
              events: EventLog? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Value] {
    let call = makeCall(stage, params: params, inputs: inputs, run: info, files: files, node: node, events: events)
    let outputs = try await stage.run(call).values
    let expected = Set(stage.schema.outputs.filter { port in
        port.requiresInput.map { call.inputs[$0] != nil } ?? true
    }.map(\.name))
    #expect(Set(outputs.keys) == expected, "outputs of \(stage.schema.name)", sourceLocation: sourceLocation)
    for port in stage.schema.outputs {
        if let value = outputs[port.name] {
            #expect(value.type == port.type, "type of output '\(port.name)'", sourceLocation: sourceLocation)
        }
    }
    return outputs
}

/// What `stage`'s `validate` reports for `call`'s parameters, with `sources` for its inputs.
public func validationProblems(_ stage: any Stage.Type, _ call: StageCall,
                        sources: [String: StageCheck.Source] = [:]) throws -> [StageCheck.Problem] {
    var check = StageCheck(node: call.node, params: call.params, sources: sources)
    try stage.validate(&check)
    return check.problems
}

