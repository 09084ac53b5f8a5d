import ArgumentParser
import ChiselCore
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselStages
import Foundation

/// The arguments every command that reads a graph shares.
struct GraphArguments: ParsableArguments {
    @Argument(help: "The graph JSON file.")
    var graphFile: String?

    @Option(name: .customLong("from"), help: ArgumentHelp(
        "Instead of a graph file: a PNG whose graph to run again (Chisel's, ComfyUI's or AUTOMATIC1111's), or a ComfyUI API-format workflow JSON.",
        discussion: "Its outputs go by file name under --output (run) and replace nothing without --overwrite; "
            + "see docs/graph-format.md#graphs-from-images."))
    var fromImage: String?

    /// What the graph came from, for messages.
    var graph: String { graphFile ?? fromImage ?? "" }

    func validate() throws {
        switch (graphFile, fromImage) {
        case (nil, nil): throw ValidationError("give a graph file or --from IMAGE.png")
        case (_?, _?): throw ValidationError("give a graph file or --from, not both")
        default: break
        }
        if fromImage == nil, image != nil || mask != nil {
            throw ValidationError("--image and --mask go with --from (an AUTOMATIC1111 image); a graph file names its own inputs")
        }
    }

    @Option(name: .customLong("image"), help: ArgumentHelp(
        "With --from: the image an AUTOMATIC1111 img2img or inpainting run edited, or the file a ComfyUI workflow's LoadImage loads."))
    var image: String?

    @Option(name: .customLong("mask"), help: ArgumentHelp("With --from an AUTOMATIC1111 inpainting image: its mask (white = repaint)."))
    var mask: String?

    @Option(name: .customLong("set"),
            help: ArgumentHelp("Override a parameter: NODE.PARAM=VALUE (VALUE as JSON if it parses, else a string). Repeatable.",
                               valueName: "node.param=value"))
    var overrides: [ParamOverride] = []

    @Option(name: .customLong("var"),
            help: ArgumentHelp("Set a graph variable: NAME=VALUE. Repeatable.", valueName: "name=value"))
    var variables: [KeyValueArgument] = []

    @Option(name: .customLong("model"),
            help: ArgumentHelp("Use PATH (a folder, file or builtin:NAME) for the graph's model NAME. Repeatable.",
                               valueName: "name=path"))
    var models: [KeyValueArgument] = []

    func options(batch: BatchBinding? = nil, outputs: OutputPolicy? = nil) -> GraphOptions {
        let cwd = PathResolver.workingDirectory
        var modelPaths: [String: String] = [:]
        for model in models where !model.key.hasPrefix("lora:") {
            let location = model.value.stringValue ?? model.value.serialized()
            modelPaths[model.key] = BuiltinModelLocation.name(in: location) != nil ? location : cwd.resolve(location)
        }
        return GraphOptions(workingDirectory: cwd.base, overrides: overrides,
                            variables: KeyValueArgument.dictionary(variables), batch: batch, outputs: outputs,
                            modelPaths: modelPaths)
    }

    /// Compiles the graph file, or the graph an image carries. A graph from an image is
    /// untrusted: `outputs` (default: by file name under the working directory, replacing
    /// nothing) says where it may write, and a batch keeps it under its output folder.
    func compile(registry: StageRegistry, batch: BatchBinding? = nil, outputs: OutputPolicy? = nil) throws -> Plan {
        if let fromImage {
            let (path, json) = try embeddedGraph(fromImage, batch: batch != nil)
            let policy = outputs ?? OutputPolicy.fromImage(root: batch?.outputRoot ?? PathResolver.workingDirectory.base,
                                                           replaceExisting: batch != nil)
            return try GraphCompiler.compile(json, file: path, directory: (path as NSString).deletingLastPathComponent,
                                             registry: registry, options: options(batch: batch, outputs: policy))
        }
        return try GraphCompiler.compile(file: graph, registry: registry, options: options(batch: batch, outputs: outputs))
    }

    /// The path of an image and the graph in its `chisel-graph` text chunk; for a ComfyUI
    /// API-format workflow (a JSON file, or the `prompt` chunk of a ComfyUI PNG), its translation
    /// (`ComfyImport`); for an image AUTOMATIC1111 made, the graph its `parameters` describe
    /// (`A1111Import`). Checkpoints named by the file alone take `--model NAME=PATH`.
    func embeddedGraph(_ source: String, batch: Bool = false) throws -> (path: String, graph: JSONValue) {
        let path = PathResolver.workingDirectory.resolve(source)
        if let json = try Self.jsonDocument(path) {
            if ComfyImport.isAPIWorkflow(json) { return (path, try Self.comfyGraph(json, file: path, models: models, image: image.map { PathResolver.workingDirectory.resolve($0) }, batch: batch)) }
            if ComfyImport.isUIWorkflow(json) {
                throw ChiselError(.invalidArgument, "this is a ComfyUI workflow in the editor's format, which names no node's "
                                  + "inputs: save it from ComfyUI with Workflow → Export (API) and give that file", file: path)
            }
            throw ChiselError(.invalidArgument, "--from takes an image or a ComfyUI API-format workflow; a Chisel graph "
                              + "file is given without --from", file: path)
        }
        let decoded = try ImageReader.read(path: path)
        if let text = decoded.text(forKey: SaveImageStage.graphTextKey) {
            return (path, try JSONParser.parse(text, file: path))
        }
        if let prompt = decoded.text(forKey: ComfyExport.key), let json = try? JSONParser.parse(prompt), ComfyImport.isAPIWorkflow(json) {
            return (path, try Self.comfyGraph(json, file: path, models: models, image: image.map { PathResolver.workingDirectory.resolve($0) }, batch: batch))
        }
        guard let parameters = decoded.text(forKey: "parameters"), let info = GenerationInfo.parse(parameters) else {
            throw ChiselError(.invalidArgument, "the image holds no '\(SaveImageStage.graphTextKey)' text chunk, no ComfyUI "
                              + "'prompt' and no AUTOMATIC1111 parameters: it was not saved by Chisel, ComfyUI or AUTOMATIC1111",
                              file: path)
        }
        guard let location = KeyValueArgument.dictionary(models)["sd"]?.stringValue else {
            throw ChiselError(.invalidArgument, "an AUTOMATIC1111 image names its checkpoint '\(info.value("Model") ?? "?")' only: "
                              + "give --model sd=PATH for it", file: path)
        }
        let model = try ModelArgument.resolve(location, cwd: .workingDirectory)
        guard case .stableDiffusion(let facts) = try ModelFacts(path: model) else {
            throw ChiselError(.invalidArgument, "--model sd=\(location) is not a Stable Diffusion checkpoint")
        }
        if let expected = info.value("Model hash"), BuiltinModelLocation.name(in: location) == nil, FileHash.isFile(model),
           let actual = try? FileHash.hex(.sha256, of: model), !actual.hasPrefix(expected.lowercased()) {
            Terminal.err("warning: the image was made with a checkpoint of hash \(expected) ('\(info.value("Model") ?? "?")'); "
                         + "--model sd=\(location) has hash \(actual.prefix(10)): the result will differ")
        }
        let stem = ImageOrigin(path: path).stem
        let cwd = PathResolver.workingDirectory
        var loras: [String: String] = [:]
        for model in models where model.key.hasPrefix("lora:") {
            loras[String(model.key.dropFirst("lora:".count))] = cwd.resolve(model.value.stringValue ?? model.value.serialized())
        }
        let graph = try A1111Import.graph(info, model: BuiltinModelLocation.name(in: location) != nil ? location : model,
                                          facts: facts, image: image.map { cwd.resolve($0) }, mask: mask.map { cwd.resolve($0) },
                                          loras: loras, output: "\(stem)-chisel.png")
        return (path, graph)
    }

    /// The file's JSON when it is a JSON document (starts with `{` after white space), else nil.
    static func jsonDocument(_ path: String) throws -> JSONValue? {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ChiselError(.io, "cannot read the file", file: path)
        }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        try? handle.close()
        guard head.first(where: { !" \t\r\n".utf8.contains($0) }) == UInt8(ascii: "{") else { return nil }
        return try JSONParser.parse(String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self), file: path)
    }

    /// A ComfyUI workflow's translation; every node it cannot translate, and every checkpoint
    /// `--model` does not name, is an error here.
    static func comfyGraph(_ workflow: JSONValue, file: String, models: [KeyValueArgument], image: String? = nil,
                           batch: Bool = false) throws -> JSONValue {
        let result = ComfyImport.translate(workflow, folder: (file as NSString).deletingLastPathComponent, image: image, batch: batch)
        if !result.problems.isEmpty {
            throw ChiselError(.invalidArgument, "the ComfyUI workflow has nodes Chisel cannot translate:\n  "
                              + result.problems.map(\.description).joined(separator: "\n  "), file: file)
        }
        let given = KeyValueArgument.dictionary(models)
        let missing = result.checkpoints.filter { given[$0.model] == nil }
        if !missing.isEmpty {
            throw ChiselError(.invalidArgument, "the workflow names its checkpoints by file name only: give "
                              + missing.map { "--model \($0.model)=PATH (for '\($0.file)')" }.joined(separator: ", "), file: file)
        }
        guard let graph = result.graph else { throw ChiselError(.invalidArgument, "the workflow saves no image", file: file) }
        return graph
    }
}

/// How progress is shown.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    /// A bar on a terminal, nothing otherwise.
    case auto
    case bar
    /// JSON lines on stderr.
    case json
    case none
}

struct RunSettings: ParsableArguments {
    @Option(help: "Progress display: auto (a bar on a terminal), bar, json (events as JSON lines on stderr) or none.")
    var progress: ProgressMode = .auto

    @Option(help: "Refuse images with more pixels than this (decompression bombs).")
    var maxPixels: Int = RunInfo.defaultMaxPixels

    @Option(help: "Kernel threads (default: the CPUs the process may use — affinity mask and cgroup quota; CHISEL_THREADS sets it too).")
    var threads: Int?

    func validate() throws {
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }
}
