import ArgumentParser
import ChiselCore
import ChiselModelStages
import ChiselStages
import ChiselTensor

/// Registers a stage target's stages (and model loaders), e.g. `ColorMatch.register(in:)`.
public typealias StageRegistration = @Sendable (inout StageRegistry) throws -> Void

/// The `chisel` command line as a library: a package that adds stages builds its own
/// executable, with every command, from a `main.swift` of one call:
///
/// ```swift
/// import ChiselCLI
/// import MyStages
///
/// await ChiselCLI.main(name: "mychisel", stages: [MyStages.register])
/// ```
public enum ChiselCLI {
    /// Parses the command line and runs the command with the built-in stages, the model stages
    /// and `stages`, then exits: 0 on success, 1 when anything failed (each problem on one
    /// `error:` line), 64 for a wrong command line.
    public static func main(name: String = "chisel", stages: [StageRegistration] = []) async -> Never {
        Setup.current.withLock { $0 = Setup(commandName: name, registrations: stages) }
        Allocator.keepLargeBlocks()
        ThreadBudget.apply(arguments: Array(CommandLine.arguments.dropFirst()), name: name)
        do {
            let arguments = OptionCheck.joiningNegativeNumbers(Array(CommandLine.arguments.dropFirst()))
            var command = try ChiselCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            ChiselCommand.exit()
        } catch let exit as ExitCode {
            ChiselCommand.exit(withError: exit)
        } catch {
            switch ChiselCommand.exitCode(for: error) {
            case .success:
                ChiselCommand.exit(withError: error)  // --help and the like
            case .validationFailure:
                // A wrong command line: one line saying what is wrong, not the whole usage text.
                Terminal.err("error: \(ChiselCommand.message(for: error)) (see '\(name) help')")
                ChiselCommand.exit(withError: ExitCode.validationFailure)
            default:
                // Chisel's own errors, one line per problem.
                Terminal.report(error)
                ChiselCommand.exit(withError: ExitCode.failure)
            }
        }
    }

    /// The stages and loaders this program knows: built-in, model stages and the caller's.
    public static func makeRegistry() throws -> StageRegistry {
        var registry = StageRegistry()
        try BuiltinStages.register(in: &registry)
        try InpaintingStages.register(in: &registry)
        try ModelStages.register(in: &registry)
        for register in Setup.current.value.registrations { try register(&registry) }
        return registry
    }

    struct Setup: Sendable {
        var commandName = "chisel"
        var registrations: [StageRegistration] = []

        static let current = Locked(Setup())
    }
}

struct ChiselCommand: AsyncParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: ChiselCLI.Setup.current.value.commandName,
            abstract: "Edit images with diffusion-model pipelines declared as JSON graphs.",
            discussion: """
                A graph is a JSON file of named nodes, each a stage with parameters and inputs wired to \
                other nodes' outputs. See docs/graph-format.md. Exit status: 0 on success, 1 when \
                anything failed, 64 for a wrong command line.
                """,
            version: ChiselVersion.text,
            subcommands: [RunCommand.self, ValidateCommand.self, BatchCommand.self, ReportCommand.self, Img2ImgCommand.self,
                          InpaintCommand.self, RefineCommand.self, SheetCommand.self, StagesCommand.self, ModelCommand.self, ImportCommand.self,
                          BenchCommand.self, ReferenceCommand.self])
    }
}
