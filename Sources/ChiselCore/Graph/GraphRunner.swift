import Foundation

/// What one run of a plan did.
public struct RunResult: Sendable {
    /// Files written by stages, in the order they were written.
    public var writtenFiles: [String]
    /// Seconds each node took, by node id.
    public var nodeSeconds: [String: Double]
}

/// Runs a `Plan`: each node once, in dependency order, independent branches concurrently,
/// every value released as soon as its last consumer has taken it.
public struct GraphRunner: Sendable {
    public let plan: Plan
    public let models: ModelStore
    public let files: FileLedger
    public let maxConcurrentNodes: Int
    private let events: RunEventSink

    public init(plan: Plan, models: ModelStore, files: FileLedger = FileLedger(),
                maxConcurrentNodes: Int = ProcessInfo.processInfo.activeProcessorCount,
                events: @escaping RunEventSink = { _ in }) {
        self.plan = plan
        self.models = models
        self.files = files
        self.maxConcurrentNodes = max(1, maxConcurrentNodes)
        self.events = events
    }

    private struct Finished: Sendable {
        var node: Int
        var outputs: [String: Value]
        var seconds: Double
    }

    public func run(_ info: RunInfo) async throws -> RunResult {
        let nodes = plan.nodes
        let written = Locked<[String]>([])
        let userEvents = events
        let sink: RunEventSink = { event in
            if case .fileWritten(_, let path) = event { written.withLock { $0.append(path) } }
            userEvents(event)
        }

        let provenance = Provenance(graph: plan.graphDocument, exporters: plan.textExporters)
        var pending = nodes.map(\.dependencyCount)
        var ready = (0..<nodes.count).filter { pending[$0] == 0 }
        var store: [Int: [String: Value]] = [:]
        var remainingUses = nodes.map { $0.consumers }
        var seconds: [String: Double] = [:]

        try await withThrowingTaskGroup(of: Finished.self) { group in
            var running = 0
            while !ready.isEmpty || running > 0 {
                while running < maxConcurrentNodes, !ready.isEmpty {
                    let i = ready.removeFirst()
                    let node = nodes[i]
                    var inputs: [String: Value] = [:]
                    var modelInputs: [String: String] = [:]
                    for (port, source) in node.inputs {
                        switch source {
                        case .model(let name):
                            modelInputs[port] = name
                        case .output(let j, let sourcePort):
                            guard let value = store[j]?[sourcePort] else {
                                throw ChiselError(.internal, "value '\(nodes[j].id).\(sourcePort)' missing when '\(node.id)' ran",
                                                  file: plan.file, node: node.id)
                            }
                            inputs[port] = value
                            remainingUses[j][sourcePort, default: 1] -= 1
                            if remainingUses[j][sourcePort] == 0 { store[j]?[sourcePort] = nil }
                        }
                    }
                    let context = StageContext(node: node.id, run: info, files: files, provenance: provenance, events: sink)
                    let models = self.models
                    let file = plan.file
                    group.addTask {
                        for (port, name) in modelInputs {
                            do {
                                inputs[port] = .model(try await models.model(named: name))
                            } catch {
                                throw ChiselError.wrapping(error, code: .model).located(file: file, node: node.id)
                            }
                        }
                        try Task.checkCancellation()
                        sink(.nodeStarted(node: node.id, stage: node.schema.name))
                        let start = DispatchTime.now().uptimeNanoseconds
                        let call = StageCall(node: node.id, params: node.params, inputs: inputs, context: context)
                        let outputs: [String: Value]
                        do {
                            outputs = try await node.stage.run(call).values
                        } catch {
                            throw ChiselError.wrapping(error).located(file: file, node: node.id)
                        }
                        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        sink(.nodeFinished(node: node.id, stage: node.schema.name, seconds: elapsed))
                        return Finished(node: i, outputs: outputs, seconds: elapsed)
                    }
                    running += 1
                }
                guard let finished = try await group.next() else { break }
                running -= 1
                let node = nodes[finished.node]
                try checkOutputs(finished.outputs, of: node)
                seconds[node.id] = finished.seconds
                // Keep only the outputs someone reads.
                store[finished.node] = finished.outputs.filter { (remainingUses[finished.node][$0.key] ?? 0) > 0 }
                for d in node.dependents {
                    pending[d] -= 1
                    if pending[d] == 0 { ready.append(d) }
                }
            }
        }
        return RunResult(writtenFiles: written.value, nodeSeconds: seconds)
    }

    /// A stage must return exactly its declared outputs, with their declared types.
    private func checkOutputs(_ outputs: [String: Value], of node: PlannedNode) throws {
        let schema = node.schema
        for port in schema.outputs {
            let expected = port.requiresInput.map { node.inputs[$0] != nil } ?? true
            switch (outputs[port.name], expected) {
            case (nil, true):
                throw ChiselError(.internal, "stage '\(schema.name)' returned no value for output '\(port.name)'",
                                  file: plan.file, node: node.id)
            case (let value?, _) where value.type != port.type:
                throw ChiselError(.internal, "stage '\(schema.name)' returned \(value.type.rawValue) for output "
                                  + "'\(port.name)', declared \(port.type.rawValue)", file: plan.file, node: node.id)
            default: break
            }
        }
        for name in outputs.keys where schema.output(name) == nil {
            throw ChiselError(.internal, "stage '\(schema.name)' returned undeclared output '\(name)'",
                              file: plan.file, node: node.id)
        }
    }
}
