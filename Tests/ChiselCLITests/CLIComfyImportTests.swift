import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// ComfyUI workflows in Chisel: `chisel import comfy`, and `run`, `validate` and `batch --from`
/// on API-format JSON and on PNGs ComfyUI saved (tools/interop/tool_images.py writes them as
/// ComfyUI's SaveImage does).
@Suite struct CLIComfyImportTests {
    static let fixtures = CLI.repository.appendingPathComponent("Tests/ChiselCLITests/Fixtures/interop").path
    static let model = CLIComfyTests.model
    static let lora = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/lora/kohya-sd1.safetensors").path

    static func workflow(sampler: String = "euler_ancestral", extra: String = "", latent: String = "[\"12\", 0]") -> String {
        """
        {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
         "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red barn, (snow:1.2)", "clip": ["4", 1]}},
         "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
         "10": {"class_type": "LoadImage", "inputs": {"image": "photo.png", "upload": "image"}},
         "12": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},
         "3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 6, "cfg": 7.5, "sampler_name": "\(sampler)",
               "scheduler": "karras", "denoise": 0.6, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
               "latent_image": \(latent)}},
         "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
         "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "barn", "images": ["8", 0]}}\(extra)}
        """
    }

    static func folder(_ json: String) throws -> TemporaryFolder {
        let temp = try TemporaryFolder()
        try json.write(toFile: temp.path("workflow_api.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: CLIComfyTests.image, toPath: temp.path("photo.png"))
        return temp
    }

    @Test func importPrintsTheGraphOfAnAPIWorkflow() throws {
        let temp = try Self.folder(Self.workflow())
        let result = try CLI.run(["import", "comfy", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)"])
        #expect(result.status == 0, "\(result.stderr)")
        let graph = try JSONParser.parse(result.stdout)
        #expect(graph["models"]?["sd"]?["path"]?.stringValue == Self.model)
        let sampler = try #require(graph["nodes"]?["sample_3"])
        #expect(sampler["stage"] == "ksampler" && sampler["params"]?["sampler_name"] == "euler_ancestral")
        #expect(sampler["params"]?["scheduler"] == "karras" && sampler["params"]?["denoise"]?.doubleValue == 0.6)
        #expect(sampler["params"]?["seed"] == .int(42) && sampler["params"]?["steps"] == .int(6))
        let text = try #require(graph["nodes"]?["text_3"]?["params"])
        #expect(text["prompt"] == "a red barn, (snow:1.2)" && text["negative_prompt"] == "blurry")
        #expect(text["mode"] == "chunk" && text["weighting"] == "comfy", "CLIPTextEncode's chunks and weights")
        #expect(graph["nodes"]?["encode_12"]?["params"]?["sampling"] == "mean", "VAEEncode takes the posterior's mode")
        #expect(graph["nodes"]?["load_10"]?["params"]?["path"]?.stringValue == temp.path("photo.png"))
    }

    @Test func untranslatableNodesAreReportedByIdAndClass() throws {
        let tiled = #", "12": {"class_type": "VAEEncodeTiled", "inputs": {"pixels": ["10", 0], "vae": ["4", 2], "tile_size": 512}}"#
        var json = Self.workflow()
        json = json.replacingOccurrences(of: #""12": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}},"#,
                                         with: "")
        json = String(json.dropLast()) + tiled + "}"
        let temp = try Self.folder(json)
        let result = try CLI.run(["import", "comfy", temp.path("workflow_api.json")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("node 12 (VAEEncodeTiled): no Chisel equivalent"), "\(result.stderr)")
        let run = try CLI.run(["run", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)", "--output", temp.path("out")])
        #expect(run.status != 0 && run.stderr.contains("node 12 (VAEEncodeTiled)"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temp.path("out")))
    }

    @Test func runAndValidateFromAWorkflowFile() throws {
        let temp = try Self.folder(Self.workflow(sampler: "dpmpp_2m"))
        let missing = try CLI.run(["run", "--from", temp.path("workflow_api.json"), "--output", temp.path("out")])
        #expect(missing.status != 0 && missing.stderr.contains("--model sd=PATH (for 'v1-5-pruned-emaonly.safetensors')"),
                "\(missing.stderr)")
        let valid = try CLI.run(["validate", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)"])
        #expect(valid.status == 0 && valid.stdout.contains("valid"), "\(valid.stderr)")
        let ran = try CLI.run(["run", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)", "--output", temp.path("out"),
                               "--progress", "none"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let written = try ImageReader.read(path: temp.path("out/barn_00001_.png"))
        #expect(written.text(forKey: "parameters")?.contains("Sampler: DPM++ 2M, Schedule type: Karras") == true)
        // Dropped back on ComfyUI: the prompt and the editor's workflow, KSampler's widgets in its order.
        let text = try CLIComfyTests.uncompressedText(temp.path("out/barn_00001_.png"))
        let prompt = try JSONParser.parse(try #require(text["prompt"]))
        let sampler = try #require(prompt.members?.first { $0.value["class_type"] == "KSampler" }?.value["inputs"])
        #expect(sampler["sampler_name"] == "dpmpp_2m" && sampler["denoise"]?.doubleValue == 0.6 && sampler["seed"] == .int(42))
        let workflow = try JSONParser.parse(try #require(text["workflow"]))
        guard case .array(let nodes)? = workflow["nodes"], case .array(let links)? = workflow["links"] else {
            Issue.record("no nodes and links in the workflow")
            return
        }
        let ksampler = try #require(nodes.first { $0["type"] == "KSampler" })
        #expect(ksampler["widgets_values"] == .array([.int(42), "fixed", .int(6), .double(7.5), "dpmpp_2m", "karras", .double(0.6)]),
                "\(String(describing: ksampler["widgets_values"]))")
        #expect(links.count == 11, "model, 2 clips, 2 conditionings, pixels, 2 vaes, 2 latents, image")
    }

    @Test func aComfyUIPNGRunsWithItsImageGiven() throws {
        let temp = try TemporaryFolder()
        let png = Self.fixtures + "/comfyui-img2img.png"
        let printed = try CLI.run(["run", "--from", png, "--model", "sd=\(Self.model)", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let graph = try JSONParser.parse(printed.stdout)
        #expect(graph["nodes"]?["sample_3"]?["params"]?["sampler_name"] == "dpmpp_2m")
        #expect(graph["nodes"]?["text_3"]?["params"]?["clip_skip"] == .int(1), "CLIPSetLastLayer -2")
        let ran = try CLI.run(["run", "--from", png, "--model", "sd=\(Self.model)", "--image", CLIComfyTests.image,
                               "--output", temp.path("out"), "--progress", "none"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(FileManager.default.fileExists(atPath: temp.path("out/lighthouse_00001_.png")))
        // Without --image its LoadImage names photo.png beside the PNG, which is not there: named in the error.
        let without = try CLI.run(["run", "--from", png, "--model", "sd=\(Self.model)", "--output", temp.path("out2")])
        #expect(without.status != 0 && without.stderr.contains("photo.png"), "\(without.stderr)")
    }

    @Test func loraLoaderBecomesTheModelsLoRA() throws {
        let lora = #", "13": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": "kohya-sd1.safetensors", "strength_model": 0.8, "strength_clip": 0.8}}"#
        var json = Self.workflow()
        json = json.replacingOccurrences(of: #""model": ["4", 0], "positive""#, with: #""model": ["13", 0], "positive""#)
            .replacingOccurrences(of: #""clip": ["4", 1]}}"#, with: #""clip": ["13", 1]}}"#)
        json = String(json.dropLast()) + lora + "}"
        let temp = try Self.folder(json)
        try FileManager.default.copyItem(atPath: Self.lora, toPath: temp.path("kohya-sd1.safetensors"))
        let result = try CLI.run(["import", "comfy", temp.path("workflow_api.json")])
        #expect(result.status == 0, "\(result.stderr)")
        let graph = try JSONParser.parse(result.stdout)
        guard case .array(let loras)? = graph["models"]?["sd"]?["loras"] else {
            Issue.record("no loras on the model: \(result.stdout)")
            return
        }
        #expect(loras.first?["path"]?.stringValue == temp.path("kohya-sd1.safetensors") && loras.first?["scale"]?.doubleValue == 0.8)
        let ran = try CLI.run(["run", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)", "--output", temp.path("out"),
                               "--progress", "none"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let parameters = try ImageReader.read(path: temp.path("out/barn_00001_.png")).text(forKey: "parameters") ?? ""
        #expect(parameters.contains("<lora:kohya-sd1:0.8>") && parameters.contains("Lora hashes: \"kohya-sd1: "), "\(parameters)")
    }

    @Test func inpaintingNodesTranslate() throws {
        let masked = #", "11": {"class_type": "LoadImageMask", "inputs": {"image": "mask.png", "channel": "red"}}, "14": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["12", 0], "mask": ["11", 0]}}"#
        var json = Self.workflow(latent: "[\"14\", 0]")
        json = String(json.dropLast()) + masked + "}"
        let temp = try Self.folder(json)
        try FileManager.default.copyItem(atPath: CLIComfyTests.mask, toPath: temp.path("mask.png"))
        let printed = try CLI.run(["import", "comfy", temp.path("workflow_api.json")])
        #expect(printed.status == 0, "\(printed.stderr)")
        let graph = try JSONParser.parse(printed.stdout)
        #expect(graph["nodes"]?["sample_3"]?["inputs"]?["mask"] == "mask_11.mask")
        #expect(graph["nodes"]?["mask_11"]?["params"]?["source"] == "red")
        let ran = try CLI.run(["run", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)", "--output", temp.path("out"),
                               "--progress", "none"])
        #expect(ran.status == 0, "\(ran.stderr)")
    }

    @Test func batchRunsAWorkflowOverAFolder() throws {
        let temp = try Self.folder(Self.workflow(sampler: "euler"))
        let input = temp.path("in")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        for name in ["a.png", "b.png"] { try FileManager.default.copyItem(atPath: CLIComfyTests.image, toPath: "\(input)/\(name)") }
        let result = try CLI.run(["batch", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)", "--input", input,
                                  "--output", temp.path("out"), "--progress", "none"])
        #expect(result.status == 0, "\(result.stderr)")
        let written = (try? FileManager.default.contentsOfDirectory(atPath: temp.path("out"))) ?? []
        #expect(written.filter { $0.hasSuffix(".png") }.count == 2, "\(written)")
    }

    @Test func editorFormatWorkflowsAreNamedAsSuch() throws {
        let temp = try Self.folder(#"{"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": [], "version": 0.4}"#)
        let result = try CLI.run(["run", "--from", temp.path("workflow_api.json"), "--model", "sd=\(Self.model)"])
        #expect(result.status != 0 && result.stderr.contains("Export (API)"), "\(result.stderr)")
    }
}

/// `chisel run --from` on images AUTOMATIC1111 saved (tools/interop/tool_images.py writes their
/// metadata as A1111's save code does): inpainting with its image and mask, a JPEG's EXIF, LoRA tags.
@Suite struct CLIA1111ImageTests {
    static let fixtures = CLIComfyImportTests.fixtures
    static let model = CLIComfyTests.model

    @Test func inpaintingParametersTakeImageAndMask() throws {
        let temp = try TemporaryFolder()
        let png = Self.fixtures + "/a1111-inpaint.png"
        let printed = try CLI.run(["run", "--from", png, "--model", "sd=\(Self.model)", "--image", CLIComfyTests.image,
                                   "--mask", CLIComfyTests.mask, "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let graph = try JSONParser.parse(printed.stdout)
        let nodes = try #require(graph["nodes"]?.members)
        #expect(nodes.contains { $0.value["stage"] == "crop" && $0.value["params"]?["padding"] == .int(8) }, "Only masked, padding 8")
        #expect(nodes.contains { $0.value["stage"] == "feather_mask" && $0.value["params"]?["radius"]?.doubleValue == 4 }, "Mask blur 4")
        #expect(nodes.contains { $0.value["stage"] == "add_noise" && $0.value["params"]?["strength"]?.doubleValue == 0.75 })
        let ran = try CLI.run(["run", "--from", png, "--model", "sd=\(Self.model)", "--image", CLIComfyTests.image,
                               "--mask", CLIComfyTests.mask, "--output", temp.path("out"), "--progress", "none"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let parameters = try ImageReader.read(path: temp.path("out/a1111-inpaint-chisel.png")).text(forKey: "parameters") ?? ""
        #expect(parameters.contains("Mask blur: 4") && parameters.contains("Inpaint area: Only masked")
                && parameters.contains("Masked area padding: 8"), "\(parameters)")
    }

    @Test func aJPEGsExifParametersRun() throws {
        let temp = try TemporaryFolder()
        let jpeg = Self.fixtures + "/a1111-txt2img.jpg"
        let printed = try CLI.run(["run", "--from", jpeg, "--model", "sd=\(Self.model)", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let graph = try JSONParser.parse(printed.stdout)
        #expect(graph["nodes"]?["text"]?["params"]?["prompt"] == "a snowy mountain, \"golden hour\": warm light, ünïcödé")
        #expect(graph["nodes"]?["noised"]?["params"]?["scheduler"] == "dpmpp_2m_karras")
        let ran = try CLI.run(["run", "--from", jpeg, "--model", "sd=\(Self.model)", "--output", temp.path("out"), "--progress", "none"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(FileManager.default.fileExists(atPath: temp.path("out/a1111-txt2img-chisel.png")))
    }

    @Test func loraTagsNeedTheirFiles() throws {
        let temp = try TemporaryFolder()
        let image = try CLIA1111ImportTests.a1111Image("""
            a fox <lora:kohya-sd1:0.7>, snow
            Steps: 4, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 48x32, Model: sd15, Lora hashes: "kohya-sd1: 794dab5e296d", RNG: CPU
            """, in: temp)
        let missing = try CLI.run(["run", "--from", image, "--model", "sd=\(Self.model)", "--print-graph"])
        #expect(missing.status != 0 && missing.stderr.contains("--model lora:kohya-sd1=PATH"), "\(missing.stderr)")
        let printed = try CLI.run(["run", "--from", image, "--model", "sd=\(Self.model)", "--model",
                                   "lora:kohya-sd1=\(CLIComfyImportTests.lora)", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let graph = try JSONParser.parse(printed.stdout)
        #expect(graph["nodes"]?["text"]?["params"]?["prompt"] == "a fox , snow", "the tag is taken out of the text, as A1111 does")
        guard case .array(let loras)? = graph["models"]?["sd"]?["loras"] else {
            Issue.record("no loras: \(printed.stdout)")
            return
        }
        #expect(loras.first?["scale"]?.doubleValue == 0.7)
    }
}
