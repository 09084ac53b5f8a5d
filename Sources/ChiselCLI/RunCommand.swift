import ArgumentParser
import ChiselCore
import Foundation

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a graph once.",
        discussion: """
            Relative paths inside the graph resolve against the graph file's folder; paths given \
            with --set resolve against the current directory. Every problem of the graph is \
            reported before anything runs.
            """)

    @OptionGroup var graph: GraphArguments
    @OptionGroup var settings: RunSettings

    @Option(help: "With --from: the folder the image's graph writes its outputs in, by file name (default: the current folder).")
    var output: String?

    @Flag(help: "With --from: let the image's graph replace existing files in the output folder.")
    var overwrite = false

    @Flag(help: "With --from: print the image's graph, as JSON, and exit without running it.")
    var printGraph = false

    func validate() throws {
        if graph.fromImage == nil, output != nil || overwrite || printGraph {
            throw ValidationError("--output, --overwrite and --print-graph go with --from IMAGE (a graph file says its own outputs)")
        }
        if let output, output.isEmpty { throw ValidationError("--output: give a folder") }
    }

    func run() async throws {
        if printGraph, let image = graph.fromImage {
            Terminal.out(try graph.embeddedGraph(image).graph.prettySerialized())
            return
        }
        let registry = try ChiselCLI.makeRegistry()
        var outputs: OutputPolicy?
        if graph.fromImage != nil {
            let folder = PathResolver.workingDirectory.resolve(output ?? ".")
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), !isFolder.boolValue {
                throw ValidationError("--output \(output ?? "."): a file, not a folder")
            }
            outputs = .fromImage(root: folder, replaceExisting: overwrite)
        }
        let plan = try graph.compile(registry: registry, outputs: outputs)
        try await Self.run(plan, registry: registry, settings: settings,
                           progress: ProgressRenderer(mode: settings.progress, total: plan.nodes.count, unit: "nodes"),
                           countSteps: false)
    }

    /// What compiling found that the user should hear before anything runs: notes and warnings.
    static func announce(_ plan: Plan) {
        for note in plan.notes { Terminal.err("note: \(note)") }
        for warning in plan.warnings { Terminal.err("warning: \(warning)") }
    }

    /// Runs a plan once with a progress display (counting nodes, or a stage's steps) and prints
    /// the files it wrote: what `chisel run`, `img2img` and `inpaint` share.
    static func run(_ plan: Plan, registry: StageRegistry, settings: RunSettings, progress: ProgressRenderer,
                    countSteps: Bool) async throws {
        announce(plan)
        let runner = GraphRunner(plan: plan, models: ModelStore(specs: plan.models, registry: registry),
                                 events: { progress.handle($0, countNodes: !countSteps, countSteps: countSteps) })
        let result: RunResult
        do {
            result = try await runner.run(plan.runInfo(maxPixels: settings.maxPixels))
        } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        for path in result.writtenFiles { Terminal.out("wrote \(path)") }
    }
}

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check a graph without running it; list every problem.",
        discussion: "Exit status 0 if the graph is valid, 1 with one line per problem otherwise.")

    @OptionGroup var graph: GraphArguments

    @Flag(help: "Validate for `chisel batch`: loaders that receive the batch's files may leave their path unset.")
    var batch = false

    @Flag(help: "With --batch: masks will be supplied (--masks).")
    var masks = false

    @Flag(help: "With --batch: save paths may leave the output folder (as chisel batch --allow-outside-output).")
    var allowOutsideOutput = false

    func run() async throws {
        let registry = try ChiselCLI.makeRegistry()
        let binding = batch ? BatchBinding(withMasks: masks, outputRoot: FileManager.default.currentDirectoryPath,
                                           allowOutsideOutput: allowOutsideOutput) : nil
        let plan = try graph.compile(registry: registry, batch: binding)
        RunCommand.announce(plan)
        Terminal.out("\(graph.graph): valid (\(plan.nodes.count) node\(plan.nodes.count == 1 ? "" : "s"))")
    }
}
