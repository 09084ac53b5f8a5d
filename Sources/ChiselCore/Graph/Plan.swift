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
        return RunInfo(index: index, stem: stem, loadedFiles: loaded, maxPixels: maxPixels, isBatch: isBatch)
    }

    /// Every file the graph will write in the run described by `run`, known before it runs.
    public func plannedOutputFiles(run: RunInfo, files: FileLedger = FileLedger()) throws -> [String] {
        var paths: [String] = []
        for node in nodes {
            let context = StageContext(node: node.id, run: run, files: files, events: { _ in })
            let call = StageCall(node: node.id, params: node.params, inputs: [:], context: context)
            do {
                paths += try node.stage.plannedOutputFiles(call)
            } catch {
                throw ChiselError.wrapping(error).located(file: file, node: node.id)
            }
        }
        return paths
    }
}
