import ArgumentParser
import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation

/// The arguments every command that reads a graph shares.
struct GraphArguments: ParsableArguments {
    @Argument(help: "The graph JSON file.")
    var graphFile: String?

    @Option(name: .customLong("from"), help: "Instead of a graph file: the PNG whose embedded graph to run again (written by save_image).")
    var fromImage: String?

    /// What the graph came from, for messages.
    var graph: String { graphFile ?? fromImage ?? "" }

    func validate() throws {
        switch (graphFile, fromImage) {
        case (nil, nil): throw ValidationError("give a graph file or --from IMAGE.png")
        case (_?, _?): throw ValidationError("give a graph file or --from, not both")
        default: break
        }
    }

    @Option(name: .customLong("set"),
            help: ArgumentHelp("Override a parameter: NODE.PARAM=VALUE (VALUE as JSON if it parses, else a string). Repeatable.",
                               valueName: "node.param=value"))
    var overrides: [ParamOverride] = []

    @Option(name: .customLong("var"),
            help: ArgumentHelp("Set a graph variable: NAME=VALUE. Repeatable.", valueName: "name=value"))
    var variables: [KeyValueArgument] = []

    func options(batch: BatchBinding? = nil) -> GraphOptions {
        GraphOptions(workingDirectory: FileManager.default.currentDirectoryPath, overrides: overrides,
                     variables: KeyValueArgument.dictionary(variables), batch: batch)
    }

    func compile(registry: StageRegistry, batch: BatchBinding? = nil) throws -> Plan {
        if let fromImage {
            let path = PathResolver.workingDirectory.resolve(fromImage)
            let decoded = try ImageReader.read(path: path)
            guard let text = decoded.text(forKey: SaveImageStage.graphTextKey) else {
                throw ChiselError(.invalidArgument, "the image holds no '\(SaveImageStage.graphTextKey)' text chunk: "
                                  + "it was not saved by a Chisel graph", file: path)
            }
            let json = try JSONParser.parse(text, file: path)
            return try GraphCompiler.compile(json, file: path, directory: (path as NSString).deletingLastPathComponent,
                                             registry: registry, options: options(batch: batch))
        }
        return try GraphCompiler.compile(file: graph, registry: registry, options: options(batch: batch))
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

    func validate() throws {
        guard maxPixels > 0 else { throw ValidationError("--max-pixels must be positive") }
    }
}
