import Foundation

/// Runs one plan over many input files: the image loader receives each file in turn (and the
/// mask loader each same-named mask), models load once for the whole batch, a bad file fails
/// only its item, and items whose outputs all exist are skipped so an interrupted batch resumes.
public struct BatchRunner: Sendable {
    public let plan: Plan
    public let registry: StageRegistry
    /// Items run at once.
    public let jobs: Int
    public let maxPixels: Int
    /// Run items even when their outputs exist.
    public let overwrite: Bool
    public let variations: BatchVariations
    private let events: @Sendable (BatchEvent) -> Void

    public init(plan: Plan, registry: StageRegistry, jobs: Int = 1, maxPixels: Int = RunInfo.defaultMaxPixels,
                overwrite: Bool = false, variations: BatchVariations = BatchVariations(),
                events: @escaping @Sendable (BatchEvent) -> Void = { _ in }) {
        self.plan = plan
        self.registry = registry
        self.jobs = max(1, jobs)
        self.maxPixels = maxPixels
        self.overwrite = overwrite
        self.variations = variations
        self.events = events
    }

    /// The plan of one item: its files set on the loaders.
    public func plan(for item: BatchItem) throws -> Plan {
        var itemPlan = plan
        guard let imageLoader = plan.imageLoader, let loader = plan.nodes.first(where: { $0.id == imageLoader }),
            let files = loader.schema.receivesFiles
        else {
            throw ChiselError(.invalidGraph, "the graph has no image loader to receive batch files", file: plan.file)
        }
        try itemPlan.setParam(files.param, of: imageLoader, to: .string(item.image))
        if let mask = item.mask, let maskLoader = plan.maskLoader,
            let node = plan.nodes.first(where: { $0.id == maskLoader }), let maskFiles = node.schema.receivesFiles
        {
            try itemPlan.setParam(maskFiles.param, of: maskLoader, to: .string(mask))
        }
        try variations.apply(to: &itemPlan, item: item)
        return itemPlan
    }

    /// Checks that items do not share output files and that no output is an input; returns the
    /// planned outputs of each item.
    public func plannedOutputs(_ items: [BatchItem]) throws -> [[String]] {
        var owner: [String: BatchItem] = [:]
        let inputs = Set(items.flatMap { [$0.image] + ($0.mask.map { [$0] } ?? []) }.map(FileLedger.canonical))
        var all: [[String]] = []
        for item in items {
            let itemPlan = try plan(for: item)
            let run = itemPlan.runInfo(index: item.index, maxPixels: maxPixels, isBatch: true)
            let problems = itemPlan.outputProblems(run: run)
            if !problems.isEmpty {
                throw ChiselErrors(problems.map { $0.located(file: item.image) })
            }
            let outputs = try itemPlan.plannedOutputFiles(run: run)
            for path in outputs {
                let key = FileLedger.canonical(path)
                if inputs.contains(key) {
                    throw ChiselError(.invalidGraph, "item \(item.index) would write over input file \(path); "
                                      + "choose an --output folder apart from the inputs or another save path", file: plan.file)
                }
                if let other = owner[key], other.index != item.index {
                    let advice = other.stem == item.stem
                        ? "\(other.image) and \(item.image) share the stem '\(item.stem)': put {index} in the save path too, "
                            + "or rename one of them"
                        : "put {stem} or {index} in the save path"
                    throw ChiselError(.invalidGraph, "items \(other.index) and \(item.index) would both write \(path); \(advice)",
                                      file: plan.file)
                }
                owner[key] = item
            }
            all.append(outputs)
        }
        return all
    }

    /// Runs `items`; each report is also passed to `report` as soon as the item ends. `all` is
    /// the whole batch when `items` is one shard of it: outputs are checked across every item,
    /// so two shards never write one file, and only the shard's own stale temporaries are removed.
    public func run(_ items: [BatchItem], of all: [BatchItem]? = nil,
                    report: @escaping @Sendable (BatchItemReport) -> Void = { _ in }) async throws -> BatchSummary
    {
        let everyOutput = try plannedOutputs(all ?? items)
        let plannedByIndex = Dictionary((all ?? items).map(\.index).enumerated().map { ($1, everyOutput[$0]) },
                                        uniquingKeysWith: { first, _ in first })
        let outputs = items.map { plannedByIndex[$0.index] ?? [] }
        if all == nil {
            for folder in Set(outputs.joined().map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }) {
                AtomicFile.removeStaleTemporaries(in: folder)
            }
        } else {
            AtomicFile.removeStaleTemporaries(for: Array(outputs.joined()))
        }
        let ledger = FileLedger()
        for item in items {
            ledger.noteInput(item.image)
            if let mask = item.mask { ledger.noteInput(mask) }
        }
        let models = ModelStore(specs: plan.models, registry: registry)
        let start = DispatchTime.now().uptimeNanoseconds
        let summary = Locked(BatchSummary())
        let nodesPerItem = max(1, ProcessInfo.processInfo.activeProcessorCount / jobs)

        await withTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                guard next < items.count else { return }
                let item = items[next]
                let planned = outputs[next]
                next += 1
                group.addTask {
                    let result = await runItem(item, planned: planned, models: models, ledger: ledger,
                                               nodeConcurrency: nodesPerItem)
                    summary.withLock { s in
                        switch result.status {
                        case .done: s.done += 1
                        case .skipped: s.skipped += 1
                        case .failed: s.failed += 1
                        }
                    }
                    report(result)
                    events(.itemFinished(result))
                }
            }
            for _ in 0..<jobs { launch() }
            while await group.next() != nil { launch() }
        }
        var result = summary.value
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return result
    }

    private func runItem(_ item: BatchItem, planned: [String], models: ModelStore, ledger: FileLedger,
                         nodeConcurrency: Int) async -> BatchItemReport {
        var result = BatchItemReport(index: item.index, input: item.image, mask: item.mask, status: .done,
                                     outputs: planned, seconds: 0, error: nil)
        if !overwrite, !planned.isEmpty, planned.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            result.status = .skipped
            return result
        }
        events(.itemStarted(item))
        if let warning = variations.warning(for: item) {
            events(.run(index: item.index, .warning(node: warning.node, message: warning.message)))
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let written = Locked<[String]>([])
        let index = item.index
        let events = self.events
        do {
            if item.expectsMask, item.mask == nil {
                throw ChiselError(.io, "no mask with the stem '\(item.stem)' in the masks folder", file: item.image)
            }
            let itemPlan = try plan(for: item)
            let runner = GraphRunner(plan: itemPlan, models: models, files: ledger, maxConcurrentNodes: nodeConcurrency,
                                     events: { event in
                                         if case .fileWritten(_, let path) = event { written.withLock { $0.append(path) } }
                                         events(.run(index: index, event))
                                     })
            _ = try await runner.run(itemPlan.runInfo(index: item.index, maxPixels: maxPixels, isBatch: true))
            result.outputs = written.value
        } catch {
            result.status = .failed
            result.outputs = written.value
            let chisel = ChiselError.wrapping(error)
            result.error = chisel.description
        }
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return result
    }
}
