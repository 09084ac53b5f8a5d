import ChiselImageIO
import Foundation
import Testing

/// The examples the docs point at run as-is.
@Suite struct CLIDocsTests {
    static var examples: [String] {
        let folder = CLI.repository.appendingPathComponent("docs/examples")
        return ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
            .filter { $0.hasSuffix(".json") }.sorted()
    }

    /// Copies samples/ and docs/examples/ side by side into `temp`, as the examples expect; returns docs/.
    static func copyDocs(to temp: TemporaryFolder) throws -> URL {
        _ = try temp.copySamples()
        let docs = temp.url.appendingPathComponent("docs")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("docs/examples"),
                                         to: docs.appendingPathComponent("examples"))
        try? FileManager.default.removeItem(at: docs.appendingPathComponent("examples/out"))
        return docs
    }

    @Test func thereAreExamples() { #expect(Self.examples.count >= 4) }

    @Test(arguments: examples)
    func exampleRuns(name: String) throws {
        let temp = try TemporaryFolder()
        let docs = try Self.copyDocs(to: temp)
        let graph = docs.appendingPathComponent("examples/\(name)").path
        #expect(try CLI.run(["validate", graph]).status == 0)
        let run = try CLI.run(["run", graph])
        #expect(run.status == 0, "\(run.stderr)")
        let written = run.stdout.split(separator: "\n").filter { $0.hasPrefix("wrote ") }.map { String($0.dropFirst(6)) }
        #expect(!written.isEmpty)
        for path in written { _ = try ImageReader.read(path: path) }
    }

    /// The variables example honours --var.
    @Test func varOverridesAVariable() throws {
        let temp = try TemporaryFolder()
        let docs = try Self.copyDocs(to: temp)
        let run = try CLI.run(["run", docs.appendingPathComponent("examples/variables.json").path, "--var", "size=96"])
        #expect(run.status == 0, "\(run.stderr)")
        let image = try ImageReader.read(path: docs.appendingPathComponent("examples/out/lake-96px-v1.png").path).image
        #expect(image.width == 96 && image.height == 96)
    }
}
