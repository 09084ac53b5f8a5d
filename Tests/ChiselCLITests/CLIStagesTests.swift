import Foundation
import Testing

@Suite struct CLIStagesTests {
    /// The built-in, inpainting and model stages and the linked plugin's, sorted.
    static let builtins = [
        "add_noise", "canny", "color_match", "combine_masks", "composite", "control_tile", "controlnet", "crop", "denoise",
        "empty_latent", "empty_tokens", "encode_prompt", "feather_mask", "fill_latent", "fill_masked",
        "grow_mask", "image_to_mask", "invert_mask", "ksampler", "load_image", "load_mask", "mask_to_image",
        "mask_tokens", "match_mask", "pad", "paste_crop", "predict_tokens", "refine_tokens",
        "resize", "save_image", "t2i_adapter", "vae_decode", "vae_encode", "vae_encode_for_inpaint", "vq_decode", "vq_encode",
    ]

    @Test func listsEveryStageWithItsDoc() throws {
        let result = try CLI.run(["stages"])
        #expect(result.status == 0)
        let names = result.stdout.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
        #expect(names == Self.builtins)
        #expect(result.stdout.contains("Match an image's colour statistics"))  // the plugin's stage is linked
    }

    @Test func describesOneStage() throws {
        let result = try CLI.run(["stages", "save_image"])
        #expect(result.status == 0)
        for text in ["Inputs:", "Parameters:", "quality", "1…100", "default 95", "bit_depth", "auto | 8 | 16"] {
            #expect(result.stdout.contains(text), "missing \(text)")
        }
        let unknown = try CLI.run(["stages", "sharpen"])
        #expect(unknown.status == 1)
        #expect(unknown.errorLines == ["error: no stage named 'sharpen'; `chisel stages` lists them"])
    }

    /// docs/stages.md is generated from the schemas; it must match what this build prints.
    @Test func stageReferenceIsUpToDate() throws {
        let result = try CLI.run(["stages", "--markdown"])
        #expect(result.status == 0)
        let committed = try String(contentsOf: CLI.repository.appendingPathComponent("docs/stages.md"), encoding: .utf8)
        #expect(result.stdout == committed, "docs/stages.md is stale: run `swift run chisel stages --markdown > docs/stages.md`")
    }

    @Test(arguments: [["--help"], ["run", "--help"], ["validate", "--help"], ["batch", "--help"], ["stages", "--help"]])
    func helpIsThere(arguments: [String]) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: chisel"))
        #expect(result.stdout.contains("OVERVIEW:"))
    }

    @Test func wrongCommandLineIsAUsageError() throws {
        let result = try CLI.run(["batch", "g.json", "--input", "x"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--output"))
        let jobs = try CLI.run(["batch", "g.json", "--input", "x", "--output", "y", "--jobs", "0"])
        #expect(jobs.status == 64)
    }
}
