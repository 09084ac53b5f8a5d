import ChiselCore
import Foundation
import Testing

/// Each one-line command prints, with --print-graph, exactly its sample graph under
/// samples/commands/ (scripts/command-graphs.sh writes them from commands.json), and each sample
/// is a graph `chisel validate` accepts: what a command runs is a graph a user can read and run.
@Suite struct CLICommandGraphTests {
    static let folder = CLI.repository.appendingPathComponent("samples/commands")

    static var commands: [String: [String]] {
        guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent("commands.json").path),
              case .object(let members)? = try? JSONParser.parse(Array(data)) else { return [:] }
        var commands: [String: [String]] = [:]
        for member in members {
            if case .array(let items) = member.value { commands[member.key] = items.compactMap(\.stringValue) }
        }
        return commands
    }

    @Test func everyCommandHasASample() {
        let names = Set(Self.commands.values.compactMap(\.first))
        #expect(names == ["img2img", "inpaint", "refine"], "commands.json covers \(names)")
        #expect(Self.commands.count >= 8)
    }

    @Test(arguments: commands.keys.sorted())
    func printedGraphEqualsTheSample(name: String) throws {
        let arguments = try #require(Self.commands[name])
        let printed = try CLI.run(arguments + ["--print-graph"], in: CLI.repository)
        #expect(printed.status == 0, "\(printed.stderr)")
        // The sample's paths are relative to its folder, so that it runs as a graph file.
        let relative = printed.stdout.replacingOccurrences(of: CLI.repository.path + "/samples/", with: "../")
        let sample = folder(name)
        let expected = try String(contentsOfFile: sample, encoding: .utf8)
        #expect(try JSONParser.parse(relative).serialized() == (try JSONParser.parse(expected).serialized()),
                "\(name): the command prints another graph than \(sample); if the change is meant, run scripts/command-graphs.sh")
        let validation = try CLI.run(["validate", sample])
        #expect(validation.status == 0, "\(validation.stderr)")
    }

    private func folder(_ name: String) -> String { Self.folder.appendingPathComponent("\(name).json").path }
}
