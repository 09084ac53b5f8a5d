/// Each stage's own rules (`Stage.validate`): cross-parameter checks and parameters that need
/// an input, reported with the node and the JSON path of the parameter or input.
extension GraphCompiler {
    mutating func checkStageRules(_ drafts: [NodeDraft], wired: [[String: PlannedSource]], models: [ModelSpec]) {
        let modelsByName = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var graphSources: [String: [String: StageCheck.Source]] = [:]
        for (i, draft) in drafts.enumerated() {
            var sources: [String: StageCheck.Source] = [:]
            for (port, source) in wired[i] {
                switch source {
                case .output(let node, let output):
                    sources[port] = .node(drafts[node].id, stage: drafts[node].stage?.schema.name ?? "", port: output)
                case .model(let name):
                    if let spec = modelsByName[name] { sources[port] = .model(spec) }
                }
            }
            graphSources[draft.id] = sources
        }
        for draft in drafts {
            guard let stage = draft.stage, draft.paramsValid else { continue }
            var check = StageCheck(node: draft.id, params: draft.params, sources: graphSources[draft.id] ?? [:], graphSources: graphSources)
            do {
                try stage.validate(&check)
            } catch {
                let error = ChiselError.wrapping(error, code: .invalidParameter)
                report(error.message, node: draft.id, at: draft.path, code: error.code)
            }
            for problem in check.problems {
                let path = problem.param.map { draft.paramPath($0) }
                    ?? problem.input.map { draft.inputs[$0]?.path ?? "\(draft.path).inputs.\($0)" }
                    ?? draft.path
                report(problem.message, node: draft.id, at: path, code: problem.code)
            }
            for warning in check.warnings { warnings.append("node '\(draft.id)': \(warning.message)") }
        }
    }
}
