import ChiselCore
import Foundation
import Testing

/// `chisel validate` finds what `chisel run` would fail on, and malformed command lines are
/// usage errors (exit 64) with one line saying what is wrong.
@Suite struct CLIValidationTests {
    static func graph(_ nodes: String, in temp: TemporaryFolder) throws -> String {
        let image = CLI.repository.appendingPathComponent("samples/images/lake.png").path
        return try temp.write("""
            {"chisel": 1, "nodes": {
              "photo": {"stage": "load_image", "params": {"path": "\(image)"}},
              \(nodes)
            }}
            """, to: "graph.json")
    }

    @Test func resizeWithoutASizeIsRejectedBeforeRunning() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.graph("""
            "small": {"stage": "resize", "inputs": {"image": "photo.image"}},
            "save": {"stage": "save_image", "inputs": {"image": "small.image"}, "params": {"path": "out.png"}}
            """, in: temp)
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1)
        #expect(result.errorLines == ["error: \(graph): node 'small' (nodes.small.params.width): give width, height or scale"])
        let run = try CLI.run(["run", graph])
        #expect(run.status == 1)
        #expect(!FileManager.default.fileExists(atPath: temp.path("out.png")), "nothing runs when validation fails")
    }

    @Test func saveToAnUnknownExtensionIsRejectedBeforeRunning() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.graph("""
            "save": {"stage": "save_image", "inputs": {"image": "photo.image"}, "params": {"path": "x.gif"}}
            """, in: temp)
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1)
        #expect(result.errorLines == ["error: \(graph): node 'save' (nodes.save.params.path): cannot tell the format from "
                                      + "extension '.gif'; use .png, .jpg or set format"])
    }

    @Test func aRuleBrokenThroughSetNamesTheArgument() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.graph("""
            "save": {"stage": "save_image", "inputs": {"image": "photo.image"}, "params": {"path": "x.png"}}
            """, in: temp)
        let result = try CLI.run(["validate", graph, "--set", "save.format=jpeg"])
        #expect(result.status == 1)
        #expect(result.errorLines == ["error: \(graph): node 'save' (--set save.format=jpeg): format jpeg does not match extension '.png'"])
    }

    @Test func bothRulesAreReportedTogetherWithOtherProblems() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.graph("""
            "small": {"stage": "resize", "inputs": {"image": "photo.image"}},
            "save": {"stage": "save_image", "inputs": {"image": "small.image"}, "params": {"path": "x.gif"}},
            "crop": {"stage": "crop", "inputs": {"image": "photo.image"}, "params": {"region": "mask"}}
            """, in: temp)
        let lines = try CLI.run(["validate", graph]).errorLines
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.contains { $0.contains("(nodes.small.params.width): give width, height or scale") })
        #expect(lines.contains { $0.contains("(nodes.save.params.path): cannot tell the format") })
        #expect(lines.contains { $0.contains("(nodes.crop.params.region): region \"mask\" needs the mask input connected") })
    }

    @Test(arguments: [
        (["validate", "g.json", "--var", "nonsense"], "--var <name=value>"),
        (["validate", "g.json", "--set", "nonsense"], "--set <node.param=value>"),
        (["validate", "g.json", "--set", "nodot=1"], "--set <node.param=value>"),
        (["model", "inspect", "m.safetensors", "--hint", "bad"], "--hint <key=value>"),
    ])
    func malformedKeyValueArgumentsAreUsageErrors(arguments: [String], option: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 64)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("error: ") == true)
        #expect(lines.first?.contains(option) == true, "\(result.stderr)")
    }
}
