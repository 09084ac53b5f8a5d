import ChiselCore
import Foundation
import Testing

/// `chisel model inspect` driven as a user would.
@Suite struct CLIModelTests {
    static var fixtures: URL { CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference") }

    @Test func inspectsAHealthyFolder() throws {
        let result = try CLI.run(["model", "inspect", Self.fixtures.appendingPathComponent("sd2-tiny").path])
        #expect(result.status == 0, "\(result.stderr)")
        for text in ["diffusers folder (StableDiffusionPipeline)", "family:            Stable Diffusion 2.x",
                     "prediction type:   v_prediction", "inpainting:        no", "unet: 145,748 parameters",
                     "problems: none"] {
            #expect(result.stdout.contains(text), "missing \(text)\n\(result.stdout)")
        }
    }

    @Test func singleFilesNeedHintsOnlyWhereShapesCannotTell() throws {
        let file = Self.fixtures.appendingPathComponent("sd1-inpaint-tiny.safetensors").path
        // The tiny model uses 8 GroupNorm groups and 8 heads where SD uses 32 and 8: without hints
        // the norms do not fit, and the error says which key.
        let bare = try CLI.run(["model", "inspect", file])
        #expect(bare.status == 1)
        #expect(bare.errorLines.contains { $0.contains("norm_num_groups") })
        let hinted = try CLI.run(["model", "inspect", file, "--hint", "vae.norm_num_groups=8", "--hint", "unet.norm_num_groups=8",
                                  "--hint", "unet.attention_head_dim=8", "--hint", "text_encoder.num_attention_heads=4"])
        #expect(hinted.status == 0, "\(hinted.stderr)")
        #expect(hinted.stdout.contains("inpainting:        yes (9-channel UNet)"))
        // A hint may be a list, as a config.json holds it.
        let listed = try CLI.run(["model", "inspect", file, "--hint", "vae.norm_num_groups=8", "--hint", "unet.norm_num_groups=8",
                                  "--hint", "unet.attention_head_dim=[8,8]", "--hint", "text_encoder.num_attention_heads=4"])
        #expect(listed.status == 0, "\(listed.stderr)")
        let wrong = try CLI.run(["model", "inspect", file, "--hint", "vae.norm_num_groups=8", "--hint", "unet.norm_num_groups=8",
                                 "--hint", "unet.attention_head_dim=[8,8,8]", "--hint", "text_encoder.num_attention_heads=4"])
        #expect(wrong.status == 1 && wrong.stderr.contains("'attention_head_dim' has 3 entries, expected 2"), "\(wrong.stderr)")
        // What the tensors cannot tell and no hint gave is listed as assumed; hinted, it is not.
        let norms = ["--hint", "vae.norm_num_groups=8", "--hint", "unet.norm_num_groups=8"]
        let assumed = try CLI.run(["model", "inspect", file] + norms)
        #expect(assumed.stdout.contains("assumed:           unet.attention_head_dim=8, text_encoder.num_attention_heads=1"),
                "\(assumed.stdout)")
        #expect(!hinted.stdout.contains("assumed:"), "\(hinted.stdout)")
        // A graph on that file says it once, as a validation warning.
        let temp = try TemporaryFolder()
        let graph = try temp.write("""
            {"chisel": 1, "models": {"sd": {"path": "\(file)", "hints": {"vae.norm_num_groups": 8, "unet.norm_num_groups": 8}}},
             "nodes": {"text": {"stage": "encode_prompt", "inputs": {"model": "sd"}, "params": {"prompt": "x"}}}}
            """, to: "g.json")
        let validated = try CLI.run(["validate", graph])
        #expect(validated.status == 0, "\(validated.stderr)")
        let warnings = validated.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: model 'sd': a single file cannot tell") }
        #expect(warnings.count == 1 && warnings.first?.contains("unet.attention_head_dim=8") == true, "\(validated.stderr)")
    }

    @Test func damagedWeightsAreNamedWithFileAndTensor() throws {
        let temp = try TemporaryFolder()
        let folder = temp.url.appendingPathComponent("model")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent("sd1-tiny"), to: folder)
        let weights = folder.appendingPathComponent("vae/diffusion_pytorch_model.safetensors")
        var bytes = [UInt8](try Data(contentsOf: weights))
        bytes.removeLast(100)  // truncated: the last tensors' bytes are gone
        try Data(bytes).write(to: weights)
        let result = try CLI.run(["model", "inspect", folder.path])
        #expect(result.status == 1)
        #expect(!result.crashed)
        let line = result.errorLines.first { $0.contains("vae/diffusion_pytorch_model.safetensors") }
        #expect(line?.contains("tensor '") == true, "\(result.stderr)")
        #expect(line?.contains("point past the end") == true, "\(result.stderr)")
        let missing = try CLI.run(["model", "inspect", temp.path("nothing-here")])
        #expect(missing.status == 1)
        #expect(missing.errorLines.first?.contains("no such file or folder") == true)
    }
}

/// `chisel bench` runs and reports in the shape the side-by-side script reads (its timings are
/// not checked here: speed is shown by the benchmark itself, not by tests).
@Suite struct CLIBenchTests {
    @Test func benchPrintsItsJSONReport() throws {
        let result = try CLI.run(["bench", "--json", "--precision", "f32", "--part", "kernels", "--size", "64", "--repeats", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try JSONParser.parse(result.stdout)
        guard case .array(let results)? = report["results"], let first = results.first,
            case .array(let rows)? = first["rows"], case .int(let peak)? = first["peak_resident_bytes"]
        else {
            Issue.record("unexpected report \(result.stdout)")
            return
        }
        #expect(first["precision"] == "f32")
        #expect(rows.count == 6)
        #expect(rows.allSatisfy { row in
            if case .double(let seconds)? = row["seconds"] { return seconds >= 0 }
            return false
        })
        #expect(peak > 0)
        let bad = try CLI.run(["bench", "--size", "100"])
        #expect(bad.status == 64)
    }

    /// The whole-edit rows are a part asked for by name (building full-size SD 1.5 three times
    /// over is too slow for a test; tools/bench runs them): they are named in the help, and
    /// their options are checked before anything is built.
    @Test func benchOffersTheEditRows() throws {
        let help = try CLI.run(["bench", "--help"])
        #expect(help.status == 0)
        for word in ["--part", "img2img", "inpaint", "edit", "--edit-repeats", "--tokenizer"] {
            #expect(help.stdout.contains(word), "help lacks \(word)")
        }
        #expect(try CLI.run(["bench", "--part", "edit", "--edit-repeats", "0"]).status == 64)
        #expect(try CLI.run(["bench", "--part", "e2e"]).status == 64)
    }
}
