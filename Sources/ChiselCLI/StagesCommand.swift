import ArgumentParser
import ChiselCore

struct StagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stages", abstract: "List the registered stages, or describe one.")

    @Argument(help: "A stage to describe: its ports and parameters.")
    var name: String?

    @Flag(help: "Print the reference of every stage as Markdown (this is docs/stages.md).")
    var markdown = false

    func run() async throws {
        let registry = try ChiselCLI.makeRegistry()
        if markdown {
            Terminal.out(registry.schemas.markdownReference, terminator: false)
        } else if let name {
            guard let stage = registry.stage(named: name) else {
                throw ChiselError(.invalidArgument, "no stage named '\(name)'; `chisel stages` lists them")
            }
            Terminal.out(stage.schema.textDescription)
        } else {
            let schemas = registry.schemas
            let width = schemas.map(\.name.count).max() ?? 0
            for schema in schemas {
                Terminal.out(schema.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + schema.doc)
            }
        }
    }
}
