import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img --vae` with TAESD (a small AutoencoderTiny) against diffusers' img2img
/// pipeline built with `vae=` the same model (tools/reference/taesd.py).
@Suite struct CLIVAETests {
    static let taesd = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/taesd").path
    static let cases = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/taesd").path
    static let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
    static let image = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path

    func edit(vae: String?, to out: String) throws -> CLIResult {
        try CLI.run(["img2img", "--model", Self.model, "--image", Self.image,
                     "--prompt", "a red fox sitting in a snowy forest, highly detailed", "--negative-prompt", "blurry, low quality",
                     "--strength", "0.6", "--steps", "10", "--guidance", "7.5", "--seed", "11", "--output", out]
                    + (vae.map { ["--vae", $0] } ?? []))
    }

    @Test(arguments: ["tiny", "pair/taesd_decoder.safetensors"])
    func img2imgWithTAESDGivesDiffusersImage(vae: String) throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let result = try edit(vae: "\(Self.taesd)/\(vae)", to: out)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try SafeTensorsFile(path: "\(Self.cases)/img2img_sd1_taesd.safetensors").floats("image")
        let (worst, mean) = try CLILoRATests.difference(out, expected)
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
        // With the checkpoint's own VAE the image is another.
        let own = temp.path("own.png")
        #expect(try edit(vae: nil, to: own).status == 0)
        let (_, away) = try CLILoRATests.difference(own, expected)
        #expect(away > 20 * mean, "the checkpoint's VAE gave a mean difference of only \(away * 255)/255")
    }

    @Test func aWrongVAEIsAClearError() throws {
        let temp = try TemporaryFolder()
        let unet = "\(Self.model)/unet"
        let result = try edit(vae: unet, to: temp.path("o.png"))
        #expect(result.status != 0 && !result.crashed)
        #expect(result.errorLines.count == 1 && result.stderr.contains("UNet2DConditionModel"), "\(result.stderr)")
        let missing = try edit(vae: temp.path("nothing"), to: temp.path("o.png"))
        #expect(missing.status != 0 && missing.stderr.contains("no such VAE file or folder"), "\(missing.stderr)")
    }

    @Test func inspectDescribesATAESD() throws {
        for location in ["tiny", "pair/taesd_encoder.safetensors"] {
            let result = try CLI.run(["model", "inspect", "\(Self.taesd)/\(location)"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("VAE (AutoencoderTiny)") && result.stdout.contains("4, 2× downscale"), "\(result.stdout)")
        }
    }
}
