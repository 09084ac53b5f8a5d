import ArgumentParser
import ChiselCore
import Foundation

/// The arguments every command that reads a graph shares.
struct GraphArguments: ParsableArguments {
    @Argument(help: "The graph JSON file.")
    var graph: String

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
        try GraphCompiler.compile(file: graph, registry: registry, options: options(batch: batch))
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
