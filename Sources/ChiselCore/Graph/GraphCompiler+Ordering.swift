/// Dependency order and cycles.
extension GraphCompiler {
    /// Kahn's algorithm in file order; reports each cycle with the nodes on it.
    mutating func topologicalOrder(_ drafts: [NodeDraft], wired: [[String: PlannedSource]]) -> [Int]? {
        let n = drafts.count
        var dependents: [[Int]] = Array(repeating: [], count: n)
        var pending = Array(repeating: 0, count: n)
        for i in 0..<n {
            let sources = Set(wired[i].values.compactMap { source -> Int? in
                if case .output(let node, _) = source { return node }
                return nil
            })
            pending[i] = sources.count
            for s in sources { dependents[s].append(i) }
        }
        var order: [Int] = []
        var ready = (0..<n).filter { pending[$0] == 0 }
        var cursor = 0
        while cursor < ready.count {
            let i = ready[cursor]
            cursor += 1
            order.append(i)
            for d in dependents[i] {
                pending[d] -= 1
                if pending[d] == 0 { ready.append(d) }
            }
        }
        if order.count == n { return order }
        // Walk back along inputs from each node left over to find and report distinct cycles.
        var reported = Set<Int>()
        for start in 0..<n where pending[start] > 0 && !reported.contains(start) {
            var path: [Int] = []
            var seenAt: [Int: Int] = [:]
            var current = start
            while seenAt[current] == nil {
                seenAt[current] = path.count
                path.append(current)
                guard let next = wired[current].values.compactMap({ source -> Int? in
                    if case .output(let node, _) = source, pending[node] > 0 { return node }
                    return nil
                }).min() else { break }
                current = next
            }
            guard let loopStart = seenAt[current] else { continue }
            // Data flows against the walk; start the report at the loop's first node in file order.
            var loop = Array(path[loopStart...].reversed())
            if let first = loop.indices.min(by: { loop[$0] < loop[$1] }) {
                loop = Array(loop[first...] + loop[..<first])
            }
            if loop.contains(where: { reported.contains($0) }) { continue }
            loop.forEach { reported.insert($0) }
            let names = (loop + [loop[0]]).map { drafts[$0].id }
            report("cycle: \(names.joined(separator: " → ")); a node cannot depend on its own output",
                   node: drafts[loop[0]].id, at: "\(drafts[loop[0]].path).inputs")
        }
        return nil
    }
}
