import Foundation
import Testing

/// docs/cli.md is `chisel cli-reference`'s output, and names every command and option.
@Suite struct CLIReferenceTests {
    static let commands = ["run", "validate", "batch", "report", "img2img", "inpaint", "refine", "sheet", "stages", "model", "import", "bench"]

    @Test func referenceIsUpToDate() throws {
        let result = try CLI.run(["cli-reference"])
        #expect(result.status == 0, "\(result.stderr)")
        let committed = try String(contentsOf: CLI.repository.appendingPathComponent("docs/cli.md"), encoding: .utf8)
        #expect(result.stdout == committed, "docs/cli.md is stale: run `swift run chisel cli-reference > docs/cli.md`")
    }

    /// Every command has its section, and every option its `--help` lists has its row.
    @Test(arguments: commands)
    func everyOptionOfACommandIsListed(command: String) throws {
        let reference = try CLI.run(["cli-reference"]).stdout
        #expect(reference.contains("\n## chisel \(command)\n"), "no section for \(command)")
        let help = try CLI.run([command, "--help"])
        #expect(help.status == 0)
        let options = help.stdout.split(separator: "\n").compactMap { line -> String? in
            // An option's own line starts with two spaces and its name; wrapped help is indented further.
            guard line.hasPrefix("  --") else { return nil }
            return String(line.dropFirst(2).prefix { $0 != " " && $0 != "," })
        }
        #expect(!options.isEmpty)
        for option in options where !["--help", "--version"].contains(option) {
            #expect(reference.contains("`\(option)") || reference.contains(", \(option)"), "\(command) \(option) is not in docs/cli.md")
        }
    }
}
