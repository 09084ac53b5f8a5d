import Foundation

/// Where a node input comes from.
public enum PlannedSource: Sendable, Equatable {
    /// Output `port` of the node at `node` in `Plan.nodes`.
    case output(node: Int, port: String)
    /// A model of the graph's `models` section.
    case model(String)
}

/// A validated node, ready to run.
public struct PlannedNode: Sendable {
    public let id: String
    public let stage: any Stage.Type
    public var params: [String: ParamValue]
    public let inputs: [String: PlannedSource]
    /// How many node inputs read each output port.
    public let consumers: [String: Int]
    /// The nodes (indices in `Plan.nodes`) that read this node's outputs.
    public let dependents: [Int]
    /// How many distinct nodes this node reads from: it can start when that many have finished.
    public let dependencyCount: Int

    public init(id: String, stage: any Stage.Type, params: [String: ParamValue], inputs: [String: PlannedSource],
                consumers: [String: Int], dependents: [Int]) {
        self.id = id
        self.stage = stage
        self.params = params
        self.inputs = inputs
        self.consumers = consumers
        self.dependents = dependents
        dependencyCount = Set(inputs.values.compactMap { source -> Int? in
            if case .output(let node, _) = source { return node }
            return nil
        }).count
    }

    public var schema: StageSchema { stage.schema }
}

/// A validated graph: nodes in dependency order with typed parameters and resolved wires.
public struct Plan: Sendable {
    /// The graph file, for messages.
    public var file: String?
    public var description: String?
    public var nodes: [PlannedNode]
    public var models: [ModelSpec]
    /// The loader that receives each file of a batch, and whose file names `{stem}`.
    public var imageLoader: String?
    /// The mask loader that receives each same-named mask of a batch.
    public var maskLoader: String?
    /// Where outputs may go, as the graph was compiled (batches, graphs from images).
    public var outputPolicy: OutputPolicy?
    /// What compiling changed that the user should hear of (an image's output path cut to its file name).
    public var notes: [String] = []
    /// What validation found that has no effect but does not stop the graph ("node 'x': …").
    public var warnings: [String] = []
    /// The registry's exporters, for the images the run saves (`Provenance.exportedText`).
    public var textExporters: [any GraphTextExporter] = []

    public func index(of node: String) -> Int? { nodes.firstIndex { $0.id == node } }

    /// Sets a path parameter, such as a loader's file for one batch item.
    public mutating func setParam(_ param: String, of node: String, to value: ParamValue) throws {
        guard let i = index(of: node), nodes[i].schema.param(param) != nil else {
            throw ChiselError(.internal, "no parameter '\(param)' on node '\(node)'")
        }
        nodes[i].params[param] = value
    }

    /// The run information for these parameters: the files each loader reads and the main stem.
    public func runInfo(index: Int = 0, maxPixels: Int = RunInfo.defaultMaxPixels, isBatch: Bool = false) -> RunInfo {
        var loaded: [String: String] = [:]
        for node in nodes {
            if let files = node.schema.receivesFiles, case .string(let path)? = node.params[files.param] {
                loaded[node.id] = path
            }
        }
        let stem = imageLoader.flatMap { loaded[$0] }.map { ImageOrigin(path: $0).stem }
        return RunInfo(index: index, stem: stem, loadedFiles: loaded, maxPixels: maxPixels, isBatch: isBatch,
                       outputPolicy: outputPolicy)
    }

    /// Every file the graph will write in the run described by `run`, known before it runs.
    public func plannedOutputFiles(run: RunInfo, files: FileLedger = FileLedger()) throws -> [String] {
        try plannedOutputs(run: run, files: files).map(\.path)
    }

    /// Every file the run will write, with the node that writes it.
    public func plannedOutputs(run: RunInfo, files: FileLedger = FileLedger()) throws -> [(node: String, path: String)] {
        var outputs: [(node: String, path: String)] = []
        for node in nodes {
            let context = StageContext(node: node.id, run: run, files: files, events: { _ in })
            let call = StageCall(node: node.id, params: node.params, inputs: [:], context: context)
            do {
                outputs += try node.stage.plannedOutputFiles(call).map { (node.id, $0) }
            } catch {
                throw ChiselError.wrapping(error).located(file: file, node: node.id)
            }
        }
        return outputs
    }

    /// The problems with the files a run will write, each naming its node: two nodes writing
    /// one file, an output that is a folder or one of the run's input files, one outside the
    /// output folder, one that exists where files may not be replaced (`existing`: checked only
    /// where the run's own paths are known, not for a batch's sample item).
    public func outputProblems(run: RunInfo, existing: Bool = true) -> [ChiselError] {
        let outputs: [(node: String, path: String)]
        do {
            outputs = try plannedOutputs(run: run)
        } catch {
            return [ChiselError.wrapping(error)]
        }
        var problems: [ChiselError] = []
        func problem(_ node: String, _ message: String) {
            problems.append(ChiselError(.invalidGraph, message, file: file, node: node, jsonPath: "nodes.\(node)"))
        }
        let inputs = Set(run.loadedFiles.values.map(FileLedger.canonical))
        var writer: [String: String] = [:]
        for (node, path) in outputs {
            let key = FileLedger.canonical(path)
            if let other = writer[key] {
                problem(node, "nodes '\(other)' and '\(node)' both write \(path); give each its own path "
                        + "(one would replace the other)")
                continue
            }
            writer[key] = node
            if let policy = run.outputPolicy, policy.confined, !policy.contains(path) {
                problem(node, "output \(path) is outside the output folder \(policy.root)")
            }
            if inputs.contains(key) {
                problem(node, "output \(path) is one of the run's input files; choose another path")
            }
            guard existing else { continue }
            if let reason = OutputPolicy.unwritable(path) {
                problem(node, "\(reason): \(path)")
            } else if run.outputPolicy?.replaceExisting == false, FileManager.default.fileExists(atPath: path) {
                problem(node, "output \(path) exists, and \(run.outputPolicy?.origin ?? "this run") replaces no file; "
                        + "give --overwrite, or another --output folder")
            }
        }
        return problems
    }
}
