import ArgumentParser
import ChiselTensor

@main
struct Chisel: AsyncParsableCommand {
    static func main() async {
        Allocator.keepLargeBlocks()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }

    static let configuration = CommandConfiguration(
        commandName: "chisel",
        abstract: "Edit images with diffusion-model pipelines declared as JSON graphs.",
        discussion: """
            A graph is a JSON file of named nodes, each a stage with parameters and inputs wired to \
            other nodes' outputs. See docs/graph-format.md. Exit status: 0 on success, 1 when \
            anything failed, 64 for a wrong command line.
            """,
        subcommands: [RunCommand.self, ValidateCommand.self, BatchCommand.self, StagesCommand.self, ModelCommand.self, BenchCommand.self])
}
