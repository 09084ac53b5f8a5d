import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// Few-step edits against diffusers (tools/reference/lcm.py): a guidance-distilled UNet
/// (time_cond_proj_dim) with its LCMScheduler, and LCM-LoRA-style use (a LoRA, the LCM scheduler
/// by name, guidance 1), and SD-Turbo-style settings (Euler with trailing spacing, guidance 0,
/// one or two steps).
@Suite struct CLIFewStepTests {
    static let cases = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/lcm").path
    static let image = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path
    static let prompt = ["--prompt", "a red fox sitting in a snowy forest, highly detailed", "--negative-prompt", "blurry, low quality"]

    func check(_ name: String, _ arguments: [String], in folder: TemporaryFolder? = nil) throws {
        let temp = try folder ?? TemporaryFolder()
        let out = temp.path("out.png")
        let result = try CLI.run(["img2img", "--image", Self.image, "--output", out] + Self.prompt + arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try SafeTensorsFile(path: "\(Self.cases)/\(name).safetensors").floats("image")
        let (worst, mean) = try CLILoRATests.difference(out, expected)
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "\(name): max \(worst * 255)/255, mean \(mean * 255)/255")
    }

    @Test func guidanceDistilledUNetGivesDiffusersImage() throws {
        try check("img2img_lcm_unet", ["--model", CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-lcm-tiny").path,
                                       "--steps", "4", "--strength", "0.5", "--guidance", "2", "--seed", "14"])
    }

    @Test func lcmSchedulerWithALoRAGivesDiffusersImage() throws {
        try check("img2img_lcm_lora", ["--model", CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path,
                                       "--scheduler", "lcm", "--lora",
                                       CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/lora/kohya-sd1.safetensors").path,
                                       "--steps", "4", "--strength", "0.75", "--guidance", "1", "--seed", "15"])
    }

    /// sd2-tiny's networks with SD-Turbo's scheduler config (Euler, trailing spacing), as an
    /// SD-Turbo folder ships it: `--scheduler auto` takes it from the folder. 2 × 0.5 and 4 × 0.25
    /// run one step (at 499 and at 249), 1 × 1.0 one step from pure noise.
    @Test(arguments: [("2", "0.5", "16"), ("4", "0.25", "17"), ("1", "1.0", "18")])
    func turboSettingsGiveDiffusersImage(steps: String, strength: String, seed: String) throws {
        let temp = try TemporaryFolder()
        let base = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd2-tiny")
        let model = temp.url.appendingPathComponent("sd2-turbo-tiny")
        let files = FileManager.default
        try files.createDirectory(at: model.appendingPathComponent("scheduler"), withIntermediateDirectories: true)
        for part in ["model_index.json", "unet", "vae", "text_encoder", "tokenizer"] {
            try files.createSymbolicLink(at: model.appendingPathComponent(part), withDestinationURL: base.appendingPathComponent(part))
        }
        try files.copyItem(atPath: "\(Self.cases)/turbo_scheduler/scheduler_config.json",
                           toPath: model.appendingPathComponent("scheduler/scheduler_config.json").path)
        try check("img2img_turbo_\(steps)x\(strength)", ["--model", model.path, "--steps", steps, "--strength", strength,
                                                       "--guidance", "0", "--seed", seed], in: temp)
    }

    /// Unguided edits encode the prompt alone, as diffusers does; guided ones both sides.
    @Test func unguidedEditsSkipTheNegativePrompt() throws {
        let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
        for (guidance, skips) in [("1", true), ("0", true), ("7.5", false)] {
            let result = try CLI.run(["img2img", "--model", model, "--image", Self.image, "--guidance", guidance, "--print-graph"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("\"encode_negative\":false") == skips, "guidance \(guidance): \(result.stdout)")
        }
    }
}
