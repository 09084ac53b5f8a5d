import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img --lora` against diffusers' img2img pipeline with the same LoRAs loaded
/// (tools/reference/lora.py: kohya and PEFT files, one or two at once, SD 1.x and 2.x tiny
/// models), and the errors a wrong LoRA gives.
@Suite struct CLILoRATests {
    static let loras = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/lora").path
    static let cases = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/lora").path
    static let models = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference").path
    static let image = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path

    struct Case: Decodable, CustomTestStringConvertible {
        struct LoRA: Decodable { var file: String; var scale: Double }
        var name: String, model: String
        var loras: [LoRA]
        var steps: Int, strength: Double, guidance: Double, seed: Int
        var meanEffectOfTheLoras: Double
        var testDescription: String { name }

        enum CodingKeys: String, CodingKey {
            case name, model, loras, steps, strength, guidance, seed
            case meanEffectOfTheLoras = "mean_effect_of_the_loras"
        }
    }

    struct Record: Decodable { var prompt: String; var negativePrompt: String; var cases: [Case]
        enum CodingKeys: String, CodingKey { case prompt, cases; case negativePrompt = "negative_prompt" }
    }

    static let record: Record? = {
        guard let data = FileManager.default.contents(atPath: cases + "/cases.json") else { return nil }
        return try? JSONDecoder().decode(Record.self, from: data)
    }()

    static var all: [Case] { record?.cases ?? [] }

    func edit(_ c: Case, loras: [String], dtype: String = "fp32", to out: String) throws -> CLIResult {
        let record = try #require(Self.record)
        return try CLI.run(["img2img", "--model", CLI.repository.appendingPathComponent(c.model).path, "--image", Self.image,
                            "--prompt", record.prompt, "--negative-prompt", record.negativePrompt,
                            "--strength", "\(c.strength)", "--steps", "\(c.steps)", "--guidance", "\(c.guidance)",
                            "--seed", "\(c.seed)", "--dtype", dtype, "--output", out]
                           + loras.flatMap { ["--lora", $0] })
    }

    /// max and mean |Δ| (0…1) between a saved 8-bit PNG and the reference's float image (1×H×W×3).
    static func difference(_ path: String, _ expected: [Float]) throws -> (max: Float, mean: Float) {
        let image = try ImageReader.read(path: path).image
        let n = image.width * image.height
        #expect(expected.count == 3 * n)
        var worst: Float = 0, sum: Float = 0
        for i in 0..<min(n, expected.count / 3) {
            for c in 0..<3 {
                let d = abs(image.pixels[c * n + i] - expected[i * 3 + c])
                worst = max(worst, d)
                sum += d
            }
        }
        return (worst, sum / Float(3 * n))
    }

    @Test func fixturesArePresent() { #expect(Self.all.count == 4, "Tests/ChiselModelStagesTests/Fixtures/lora/cases.json") }

    @Test(arguments: all)
    func img2imgWithLoRAsGivesDiffusersImage(_ c: Case) throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png"), plain = temp.path("plain.png")
        let loras = c.loras.map { CLI.repository.appendingPathComponent($0.file).path + ":\($0.scale)" }
        let result = try edit(c, loras: loras, to: out)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try SafeTensorsFile(path: "\(Self.cases)/\(c.name).safetensors").floats("image")
        let (worst, mean) = try Self.difference(out, expected)
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
        // Without the LoRAs the same edit is far from the reference: they did change the image.
        let without = try edit(c, loras: [], to: plain)
        #expect(without.status == 0, "\(without.stderr)")
        let (_, away) = try Self.difference(plain, expected)
        #expect(Double(away) > 0.5 * c.meanEffectOfTheLoras && away > 10 * mean, "without the LoRAs: mean \(away * 255)/255")
    }

    @Test func bf16MergesTheSameLoRAs() throws {
        let c = try #require(Self.all.first { $0.name == "img2img_sd1_kohya_0.8" })
        let temp = try TemporaryFolder()
        let out = temp.path("bf16.png")
        let loras = c.loras.map { CLI.repository.appendingPathComponent($0.file).path + ":\($0.scale)" }
        let result = try edit(c, loras: loras, dtype: "bf16", to: out)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try SafeTensorsFile(path: "\(Self.cases)/\(c.name).safetensors").floats("image")
        let (_, mean) = try Self.difference(out, expected)
        // BF16 rounds, but stays far closer to the FP32 reference than the edit without the LoRA is.
        #expect(Double(mean) < 0.25 * c.meanEffectOfTheLoras, "bf16 mean \(mean * 255)/255, LoRA effect \(c.meanEffectOfTheLoras * 255)/255")
    }

    @Test func aLoRAForAnotherArchitectureIsAnError() throws {
        let temp = try TemporaryFolder()
        let result = try CLI.run(["img2img", "--model", "\(Self.models)/sd1-tiny", "--image", Self.image, "--steps", "2",
                                  "--lora", "\(Self.loras)/inpaint-conv-in.safetensors", "--output", temp.path("o.png")])
        #expect(result.status != 0 && !result.crashed)
        #expect(result.errorLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("inpaint-conv-in.safetensors") && result.stderr.contains("another architecture"),
                "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temp.path("o.png")))
    }

    @Test func aFileThatIsNotALoRAIsAnError() throws {
        let temp = try TemporaryFolder()
        let notLoRA = "\(Self.models)/sd1-tiny/unet/diffusion_pytorch_model.safetensors"
        let result = try CLI.run(["img2img", "--model", "\(Self.models)/sd1-tiny", "--image", Self.image, "--steps", "2",
                                  "--lora", notLoRA, "--output", temp.path("o.png")])
        #expect(result.status != 0 && !result.crashed)
        #expect(result.stderr.contains("not a LoRA file") && result.stderr.contains("diffusion_pytorch_model.safetensors"),
                "\(result.stderr)")
    }

    @Test func aScaleThatIsNotANumberNamesTheFlag() throws {
        let result = try CLI.run(["img2img", "--model", "\(Self.models)/sd1-tiny", "--image", Self.image,
                                  "--lora", "\(Self.loras)/kohya-sd1.safetensors:strong"])
        #expect(result.status == 64 && !result.crashed)
        #expect(result.stderr.contains("--lora") && result.stderr.contains("'strong' is not a number"), "\(result.stderr)")
    }

    @Test func graphsDeclareLoRAsWithPathsRelativeToTheGraph() throws {
        let temp = try TemporaryFolder()
        try FileManager.default.copyItem(atPath: "\(Self.loras)/kohya-sd1.safetensors", toPath: temp.path("style.safetensors"))
        let good = try temp.write("""
            {"chisel": 1, "models": {"sd": {"path": "\(Self.models)/sd1-tiny", "loras": [{"path": "style.safetensors", "scale": 0.8}]}},
             "nodes": {"text": {"stage": "encode_prompt", "inputs": {"model": "sd"}, "params": {"prompt": "a fox"}}}}
            """, to: "g.json")
        let ok = try CLI.run(["run", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        let bad = try temp.write("""
            {"chisel": 1, "models": {"sd": {"path": "\(Self.models)/sd1-tiny", "loras": [{"path": "missing.safetensors", "scale": "high"}]}},
             "nodes": {"text": {"stage": "encode_prompt", "inputs": {"model": "sd"}, "params": {"prompt": "a fox"}}}}
            """, to: "bad.json")
        let result = try CLI.run(["validate", bad])
        #expect(result.status != 0)
        #expect(result.stderr.contains("models.sd.loras") && result.stderr.contains("scale must be a number"), "\(result.stderr)")
    }

    @Test func inspectDescribesALoRA() throws {
        let kohya = try CLI.run(["model", "inspect", "\(Self.loras)/kohya-sd1.safetensors"])
        #expect(kohya.status == 0, "\(kohya.stderr)")
        #expect(kohya.stdout.contains("LoRA (kohya / AUTOMATIC1111)") && kohya.stdout.contains("rank:              2, 4")
                && kohya.stdout.contains("LoCon") && kohya.stdout.contains("text_encoder:"), "\(kohya.stdout)")
        let peft = try CLI.run(["model", "inspect", "\(Self.loras)/peft-sd1.safetensors"])
        #expect(peft.status == 0, "\(peft.stderr)")
        #expect(peft.stdout.contains("LoRA (diffusers / PEFT)") && peft.stdout.contains("alpha 2, 8"), "\(peft.stdout)")
    }
}
