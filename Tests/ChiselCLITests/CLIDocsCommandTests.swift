import Foundation
import Testing

/// Every `chisel` command line the README and docs/ show in a shell block names a command that
/// exists and only options that command has: a renamed or removed option fails here.
@Suite struct CLIDocsCommandTests {
    struct Shown: CustomTestStringConvertible, Sendable {
        var file: String
        var line: Int
        var words: [String]
        var testDescription: String { "\(file):\(line)" }
    }

    /// The pages, relative to the repository.
    static let pages: [String] = {
        var pages = ["README.md"]
        for folder in ["docs", "docs/internals"] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: CLI.repository.appendingPathComponent(folder).path)) ?? []
            pages += names.filter { $0.hasSuffix(".md") }.sorted().map { "\(folder)/\($0)" }
        }
        return pages
    }()

    /// The `chisel …` command lines of the pages' sh blocks (continuations joined, comments cut).
    static let shown: [Shown] = pages.flatMap { page -> [Shown] in
        guard let text = try? String(contentsOf: CLI.repository.appendingPathComponent(page), encoding: .utf8) else { return [] }
        var found: [Shown] = []
        var inShell = false
        var pending = "", start = 0
        for (index, raw) in text.components(separatedBy: "\n").enumerated() {
            if raw.hasPrefix("```") {
                inShell = raw == "```sh" || raw == "```bash"
                continue
            }
            guard inShell else { continue }
            var line = raw
            if let hash = line.range(of: " #") { line = String(line[..<hash.lowerBound]) }
            if pending.isEmpty { start = index + 1 }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            let command = (pending + line).trimmingCharacters(in: .whitespaces)
            pending = ""
            let words = Self.words(command)
            // `chisel`, an installed or built binary, or `sudo chisel`.
            guard let first = words.firstIndex(where: { $0 == "chisel" || $0.hasSuffix("/chisel") }), first <= 1 else { continue }
            found.append(Shown(file: page, line: start, words: Array(words[(first + 1)...])))
        }
        return found
    }

    /// Shell words, quotes removed (no expansion).
    static func words(_ command: String) -> [String] {
        var words: [String] = [], current = "", quote: Character? = nil, any = false
        for character in command {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
                any = true
            } else if character == " " || character == "\t" {
                if !current.isEmpty || any { words.append(current) }
                current = ""
                any = false
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty || any { words.append(current) }
        return words
    }

    static let subcommands = ["run", "validate", "batch", "report", "img2img", "inpaint", "refine", "sheet", "stages", "model", "import",
                              "bench", "cli-reference", "help"]

    @Test func theDocsShowCommands() {
        #expect(Self.shown.count >= 40, "found \(Self.shown.count)")
    }

    @Test(arguments: shown)
    func aShownCommandHasTheOptionsItUses(_ shown: Shown) throws {
        var path: [String] = []
        for word in shown.words {
            guard !word.hasPrefix("-"), path.count < 2 else { break }
            if path.isEmpty {
                guard Self.subcommands.contains(word) else { break }
            } else if !["model", "import"].contains(path[0]) {
                break
            }
            path.append(word)
        }
        // `chisel --version` and the like take the top level's options.
        let help = try CLI.run(path + ["--help"])
        #expect(help.status == 0, "\(shown.file):\(shown.line): `chisel \(path.joined(separator: " "))` is not a command")
        let known = Set(help.stdout.split(whereSeparator: { " ,\n[]<>=".contains($0) }).map(String.init).filter { $0.hasPrefix("--") })
        for word in shown.words where word.hasPrefix("--") {
            let option = String(word.prefix { $0 != "=" })
            #expect(known.contains(option) || option == "--help" || option == "--version",
                    "\(shown.file):\(shown.line): `chisel \(path.joined(separator: " "))` has no option \(option)")
        }
    }
}
