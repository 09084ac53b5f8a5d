import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// What AUTOMATIC1111 reads from Chisel's outputs. tools/interop/a1111_infotext.py ran A1111's
/// own `parse_generation_parameters` over the infotext of these command lines
/// (Fixtures/a1111-infotext.json): Chisel must still write that infotext, and what A1111 read
/// must be what was run.
@Suite struct CLIInteropTests {
    struct Case: Sendable, CustomStringConvertible {
        let name: String
        let arguments: [String]
        let infotext: String
        let a1111: [String: String]
        var description: String { name }
    }

    static let cases: [Case] = {
        let path = CLI.repository.appendingPathComponent("Tests/ChiselCLITests/Fixtures/a1111-infotext.json").path
        guard let data = FileManager.default.contents(atPath: path), let json = try? JSONParser.parse(Array(data)),
              case .array(let items)? = json["cases"] else { return [] }
        return items.compactMap { item in
            guard let name = item["name"]?.stringValue, case .array(let arguments)? = item["arguments"],
                  let infotext = item["infotext"]?.stringValue, let read = item["a1111"]?.members else { return nil }
            return Case(name: name, arguments: arguments.compactMap(\.stringValue), infotext: infotext,
                        a1111: Dictionary(read.compactMap { m in m.value.stringValue.map { (m.key, $0) } }, uniquingKeysWith: { a, _ in a }))
        }
    }()

    @Test func thereAreCases() { #expect(Self.cases.count >= 6) }

    /// Sampler and Schedule type A1111 1.9+ must read for each scheduler Chisel ran.
    static let samplers: [String: (String, String)] = [
        "euler_a": ("Euler a", "Uniform"), "euler": ("Euler", "Uniform"), "heun_karras": ("Heun", "Karras"),
        "dpmpp_2m_karras": ("DPM++ 2M", "Karras"), "dpmpp_2m_sde": ("DPM++ 2M SDE", "Uniform"),
        "ddim": ("DDIM", "Automatic"),
    ]

    @Test(arguments: cases)
    func automatic1111ReadsWhatWasRun(_ c: Case) throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let result = try CLI.run(c.arguments + ["--output", out, "--progress", "none"], in: CLI.repository)
        #expect(result.status == 0, "\(result.stderr)")
        let written = try ImageReader.read(path: out).text.first { $0.key == "parameters" }?.value
        #expect(written == c.infotext, "Chisel now writes another infotext than A1111 read; rerun tools/interop/a1111_infotext.py")

        func option(_ flag: String) -> String? {
            c.arguments.firstIndex(of: flag).map { c.arguments[$0 + 1] }
        }
        func number(_ key: String) -> Double? { c.a1111[key].flatMap(Double.init) }
        #expect(c.a1111["Prompt"] == option("--prompt"))
        #expect(c.a1111["Negative prompt"] == (option("--negative-prompt") ?? ""))
        #expect(c.a1111["Steps"] == option("--steps"))
        #expect(number("CFG scale") == option("--guidance").flatMap(Double.init))
        #expect(c.a1111["Seed"] == option("--seed"))
        let defaultStrength = c.arguments[0] == "inpaint" ? 1.0 : 0.8
        #expect(number("Denoising strength") == (option("--strength").flatMap(Double.init) ?? defaultStrength),
                "A1111 reads every edit's strength, also at 1")
        #expect(c.a1111["Clip skip"] == String((option("--clip-skip").flatMap(Int.init) ?? 0) + 1))
        #expect(c.a1111["RNG"] == "CPU", "a missing RNG reads as GPU in A1111")
        #expect(c.a1111["Emphasis"] == "None", "truncate mode applies no (word:1.2) weights")
        if let eta = option("--eta") { #expect(number("Eta DDIM") == Double(eta)) }
        let expected = try #require(Self.samplers[option("--scheduler") ?? ""], "no expectation for \(option("--scheduler") ?? "")")
        #expect(c.a1111["Sampler"] == expected.0 && c.a1111["Schedule type"] == expected.1,
                "\(c.a1111["Sampler"] ?? "") / \(c.a1111["Schedule type"] ?? "")")
        #expect(c.a1111["Size-1"] == "48" && c.a1111["Size-2"] == "32")
    }
}

/// An edit keeps its input's bit depth whether or not it is pasted back: img2img (the model's
/// image) and refine (pasted onto the input) write a 16-bit PNG for a 16-bit one, 8-bit for 8-bit.
@Suite struct CLIBitDepthTests {
    static func depth(_ path: String) throws -> UInt8 {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)).prefix(25))
        return bytes[24]  // IHDR's bit depth
    }

    @Test func editsKeepTheInputsBitDepth() throws {
        let temp = try TemporaryFolder()
        let sixteen = CLI.repository.appendingPathComponent("Tests/ChiselImageIOTests/Fixtures/rgb16.png").path
        let eight = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path
        let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
        for (input, expected) in [(sixteen, UInt8(16)), (eight, UInt8(8))] {
            let img2img = temp.path("img2img-\(expected).png"), refine = temp.path("refine-\(expected).png")
            let a = try CLI.run(["img2img", "--model", model, "--image", input, "--steps", "2", "--seed", "1", "--output", img2img])
            #expect(a.status == 0, "\(a.stderr)")
            let b = try CLI.run(["refine", "--image", input, "--iterations", "1", "--seed", "1", "--output", refine])
            #expect(b.status == 0, "\(b.stderr)")
            #expect(try Self.depth(img2img) == expected && (try Self.depth(refine)) == expected, "\(input)")
        }
    }
}
