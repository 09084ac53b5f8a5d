import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img`, `chisel inpaint` and `chisel model inspect` on the tiny SDXL models: the
/// family is taken from the checkpoint, and the commands give diffusers' SDXL pipelines' pixels
/// (tools/reference/sdxl.py; the PNG's 8 bits add up to half a level).
@Suite struct CLISDXLTests {
    static let references = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference").path
    static let fixtures = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/sdxl").path
    static let pipelines = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines").path

    static func compare(_ output: String, _ fixture: String) throws -> (max: Float, mean: Float) {
        try pixelDifference(output, fixture: "\(fixtures)/\(fixture)")
    }

    @Test func img2imgGivesDiffusersPixels() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("fox.png")
        let result = try CLI.run(["img2img", "--model", Self.references + "/sdxl-tiny", "--image", Self.pipelines + "/image.png",
                                  "--prompt", "a red fox sitting in a snowy forest, highly detailed",
                                  "--negative-prompt", "blurry, low quality", "--steps", "10", "--strength", "0.6",
                                  "--guidance", "7.5", "--seed", "601", "--output", out, "--progress", "none"])
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "img2img_euler_s060.safetensors")
        #expect(difference.max <= 2.5 && difference.mean <= 0.75, "max \(difference.max)/255, mean \(difference.mean)/255")
    }

    @Test func inpaintWithANineChannelModelGivesDiffusersPixels() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("lighthouse.png")
        // paste-back off: diffusers' pipeline returns the decoded image as it is.
        let result = try CLI.run(["inpaint", "--model", Self.references + "/sdxl-inpaint-tiny", "--image", Self.pipelines + "/image.png",
                                  "--mask", Self.pipelines + "/mask.png", "--prompt", "an old stone lighthouse on a cliff at sunset",
                                  "--negative-prompt", "blurry, low quality", "--steps", "10", "--strength", "0.75",
                                  "--guidance", "7.5", "--seed", "622", "--paste-back", "false", "--output", out, "--progress", "none"])
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "inpaint9_euler_s075.safetensors")
        #expect(difference.max <= 2.5 && difference.mean <= 0.75, "max \(difference.max)/255, mean \(difference.mean)/255")
    }

    @Test func inspectNamesTheFamily() throws {
        for (model, family) in [("sdxl-tiny", "Stable Diffusion XL"), ("sdxl-refiner-tiny", "Stable Diffusion XL refiner"),
                                ("sdxl-inpaint-tiny", "Stable Diffusion XL")] {
            let result = try CLI.run(["model", "inspect", Self.references + "/" + model])
            #expect(result.status == 0 && result.stdout.contains("family:            \(family)\n"), "\(model): \(result.stdout)")
        }
        let single = try CLI.run(["model", "inspect", Self.references + "/sdxl-inpaint-tiny.safetensors",
                                  "--hint", "unet.norm_num_groups=4", "--hint", "unet.attention_head_dim=[1,2,4]",
                                  "--hint", "vae.norm_num_groups=8"])
        #expect(single.stdout.contains("family:            Stable Diffusion XL\n") && single.stdout.contains("inpainting:        yes"),
                "\(single.stdout)\(single.stderr)")
    }

    @Test func sdxlDefaultsAreDiffusers() throws {
        let printed = try CLI.run(["inpaint", "--model", Self.references + "/sdxl-inpaint-tiny", "--image", Self.pipelines + "/image.png",
                                   "--mask", Self.pipelines + "/mask.png", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("\"strength\":0.9999"), "diffusers' SDXL inpainting default strength")
    }
}
