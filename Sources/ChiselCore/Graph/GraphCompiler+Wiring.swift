/// Input wires resolved to node outputs or models, with their types checked.
extension GraphCompiler {
    mutating func wire(_ drafts: [NodeDraft], modelNames: Set<String>) -> [[String: PlannedSource]] {
        let indexByID = Dictionary(drafts.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { first, _ in first })
        var wired: [[String: PlannedSource]] = Array(repeating: [:], count: drafts.count)
        for (i, draft) in drafts.enumerated() {
            guard let schema = draft.stage?.schema else { continue }
            for port in schema.inputs {
                guard let (source, at) = draft.inputs[port.name] else {
                    if !port.optional {
                        report("required input '\(port.name)' (\(port.type.rawValue)) is not connected",
                               node: draft.id, at: "\(draft.path).inputs.\(port.name)")
                    }
                    continue
                }
                if port.type == .model, !source.contains(".") {
                    if modelNames.contains(source) {
                        wired[i][port.name] = .model(source)
                    } else {
                        report("unknown model '\(source)'\(Suggestions.hint(source, Array(modelNames))); declare it under \"models\"",
                               node: draft.id, at: at)
                    }
                    continue
                }
                let nodeID: String, portName: String?
                if let dot = source.firstIndex(of: ".") {
                    nodeID = String(source[..<dot])
                    portName = String(source[source.index(after: dot)...])
                } else {
                    nodeID = source
                    portName = nil
                }
                guard let j = indexByID[nodeID] else {
                    report("input '\(port.name)' names unknown node '\(nodeID)'\(Suggestions.hint(nodeID, drafts.map(\.id)))",
                           node: draft.id, at: at)
                    continue
                }
                guard let sourceSchema = drafts[j].stage?.schema else { continue }  // already reported
                let outputNames = sourceSchema.outputs.map(\.name)
                let chosen: PortSpec
                if let portName {
                    guard let output = sourceSchema.output(portName) else {
                        report("node '\(nodeID)' (stage '\(sourceSchema.name)') has no output '\(portName)'"
                               + Suggestions.hint(portName, outputNames)
                               + (outputNames.isEmpty ? "; it has no outputs" : "; its outputs: \(outputNames.joined(separator: ", "))"),
                               node: draft.id, at: at)
                        continue
                    }
                    chosen = output
                } else {
                    guard sourceSchema.outputs.count == 1, let only = sourceSchema.outputs.first else {
                        report("write \"\(nodeID).PORT\": node '\(nodeID)' has "
                               + (outputNames.isEmpty ? "no outputs" : "outputs \(outputNames.joined(separator: ", "))"),
                               node: draft.id, at: at)
                        continue
                    }
                    chosen = only
                }
                guard chosen.type == port.type else {
                    report("type mismatch: input '\(port.name)' takes \(port.type.rawValue), "
                           + "but '\(nodeID).\(chosen.name)' is \(chosen.type.rawValue)", node: draft.id, at: at)
                    continue
                }
                if let required = chosen.requiresInput, drafts[j].inputs[required] == nil {
                    report("'\(nodeID).\(chosen.name)' is produced only when input '\(required)' of '\(nodeID)' is connected",
                           node: draft.id, at: at)
                    continue
                }
                wired[i][port.name] = .output(node: j, port: chosen.name)
            }
        }
        return wired
    }
}
