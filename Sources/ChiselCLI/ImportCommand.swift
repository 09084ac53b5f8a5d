import ArgumentParser
import ChiselCore
import ChiselImageIO
import ChiselModelStages
import Foundation

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Translate another tool's workflow into a Chisel graph.",
        subcommands: [ImportComfyCommand.self])
}

struct ImportComfyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "comfy", abstract: "Translate a ComfyUI API-format workflow (a JSON file, or a ComfyUI PNG's prompt) into a Chisel graph.",
        discussion: """
            Prints the graph as JSON. Every node that cannot be translated is listed on stderr by id \
            and class, and the exit status is then 1. Checkpoints keep their file names as paths \
            unless --model NAME=PATH says where they are (NAME is the graph's model name, sd for \
            the first checkpoint, or the checkpoint's file name). See docs/interop.md.
            """)

    @Argument(help: "The workflow: an API-format JSON file, or a PNG saved by ComfyUI.")
    var workflow: String

    @Option(name: .customLong("model"), help: ArgumentHelp("Use PATH for the checkpoint NAME (model name or file name). Repeatable.",
                                                           valueName: "name=path"))
    var models: [KeyValueArgument] = []

    func run() async throws {
        let path = PathResolver.workingDirectory.resolve(workflow)
        let json: JSONValue
        if let document = try GraphArguments.jsonDocument(path) {
            json = document
        } else {
            let decoded = try ImageReader.read(path: path)
            guard let prompt = decoded.text(forKey: ComfyExport.key) else {
                throw ChiselError(.invalidArgument, "the image holds no ComfyUI 'prompt' text chunk", file: path)
            }
            json = try JSONParser.parse(prompt, file: path)
        }
        guard ComfyImport.isAPIWorkflow(json) else {
            throw ChiselError(.invalidArgument, ComfyImport.isUIWorkflow(json)
                              ? "this is a ComfyUI workflow in the editor's format: export it from ComfyUI with Workflow → Export (API)"
                              : "not a ComfyUI API-format workflow (an object of nodes with class_type and inputs)", file: path)
        }
        let cwd = PathResolver.workingDirectory
        var byFile: [String: String] = [:]
        for model in models { byFile[model.key] = cwd.resolve(model.value.stringValue ?? model.value.serialized()) }
        let first = ComfyImport.translate(json, folder: (path as NSString).deletingLastPathComponent)
        // A --model named by the graph's model name applies to that checkpoint's file name.
        for checkpoint in first.checkpoints where byFile[checkpoint.model] != nil && byFile[checkpoint.file] == nil {
            byFile[checkpoint.file] = byFile[checkpoint.model]
        }
        let result = byFile.isEmpty ? first : ComfyImport.translate(json, checkpoints: byFile,
                                                                     folder: (path as NSString).deletingLastPathComponent)
        if let graph = result.graph { Terminal.out(graph.prettySerialized()) }
        for problem in result.problems { Terminal.err("cannot translate \(problem)") }
        if !result.problems.isEmpty { throw ExitCode(1) }
    }
}
