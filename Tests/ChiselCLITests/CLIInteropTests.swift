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

    @Test func thereAreCases() { #expect(Self.cases.count >= 8) }

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
        // The fixture's texts predate the Version setting (whose value changes with every commit): compared without it.
        #expect(CLI.withoutVersion(written) == c.infotext,
                "Chisel now writes another infotext than A1111 read; rerun tools/interop/a1111_infotext.py")

        func option(_ flag: String) -> String? {
            c.arguments.firstIndex(of: flag).map { c.arguments[$0 + 1] }
        }
        func number(_ key: String) -> Double? { c.a1111[key].flatMap(Double.init) }
        // A1111 reads LoRAs from the prompt: each --lora PATH:SCALE as <lora:NAME:SCALE>, its hash in Lora hashes.
        let loras = c.arguments.indices.filter { c.arguments[$0] == "--lora" }.map { c.arguments[$0 + 1] }
        let tags = loras.map { lora -> String in
            let (path, scale) = (String(lora[..<(lora.lastIndex(of: ":") ?? lora.endIndex)]), lora.split(separator: ":").last ?? "1")
            return "<lora:\(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent):\(scale)>"
        }
        #expect(c.a1111["Prompt"] == ([option("--prompt") ?? ""] + tags).joined(separator: " "))
        for tag in tags {
            let name = tag.dropFirst("<lora:".count).prefix { $0 != ":" }
            let hashes = c.a1111["Lora hashes"] ?? ""
            #expect(hashes.hasPrefix("\(name): ") && hashes.dropFirst(name.count + 2).prefix(12).allSatisfy(\.isHexDigit), "\(hashes)")
        }
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
        // The size the model worked at: the image's, or only-masked's --width × --height (as A1111 writes it).
        #expect(c.a1111["Size-1"] == (option("--width") ?? "48") && c.a1111["Size-2"] == (option("--height") ?? "32"))
        if c.arguments[0] == "inpaint" {
            // Inpainting's own settings, read back as run (A1111's names: latent noise, Masked area padding).
            #expect(c.a1111["Mask blur"] == (option("--mask-blur") ?? "4"))
            #expect(c.a1111["Masked content"] == (option("--masked-content") ?? "original").replacingOccurrences(of: "_", with: " "))
            let onlyMasked = c.arguments.contains("--only-masked")
            #expect(c.a1111["Inpaint area"] == (onlyMasked ? "Only masked" : "Whole picture"))
            if onlyMasked { #expect(c.a1111["Masked area padding"] == option("--only-masked-padding")) }
        }
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

/// What ComfyUI finds in Chisel's outputs: its PNG reader takes tEXt and uncompressed iTXt
/// chunks only, and loads the API-format `prompt` it finds as a workflow.
@Suite struct CLIComfyTests {
    /// The text chunks a reader that skips compressed ones sees, as ComfyUI's does.
    static func uncompressedText(_ path: String) throws -> [String: String] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var text: [String: String] = [:]
        var offset = 8
        while offset + 12 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            let type = String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let body = Array(bytes[(offset + 8)..<(offset + 8 + length)])
            if let nul = body.firstIndex(of: 0) {
                let key = String(decoding: body[..<nul], as: UTF8.self)
                if type == "tEXt" {
                    text[key] = String(decoding: body[(nul + 1)...], as: UTF8.self)
                } else if type == "iTXt", body[nul + 1] == 0 {
                    // compression flag 0, method, language tag \0, translated keyword \0, text
                    var rest = Array(body[(nul + 3)...])
                    for _ in 0..<2 { if let end = rest.firstIndex(of: 0) { rest = Array(rest[(end + 1)...]) } }
                    text[key] = String(decoding: rest, as: UTF8.self)
                }
            }
            offset += 12 + length
        }
        return text
    }

    static let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
    static let image = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path
    static let mask = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/mask.png").path

    @Test(arguments: [20, 3000])
    func comfyFindsPromptAndParametersAtEveryLength(words: Int) throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let prompt = (0..<words).map { "wörd\($0)" }.joined(separator: " ")
        let result = try CLI.run(["img2img", "--model", Self.model, "--image", Self.image, "--prompt", prompt, "--steps", "10",
                                  "--strength", "0.6", "--guidance", "6", "--seed", "5", "--scheduler", "dpmpp_2m_karras",
                                  "--clip-skip", "1", "--output", out])
        #expect(result.status == 0, "\(result.stderr)")
        let text = try Self.uncompressedText(out)
        #expect(text["parameters"]?.hasPrefix(prompt) == true)
        let api = try JSONParser.parse(try #require(text["prompt"], "no prompt chunk a ComfyUI reader finds"))
        let nodes = try #require(api.members).compactMap { $0.value }
        func node(_ type: String) -> JSONValue? { nodes.first { $0["class_type"]?.stringValue == type } }
        let sampler = try #require(node("KSamplerAdvanced"))["inputs"]
        #expect(sampler?["noise_seed"] == .int(5) && sampler?["steps"] == .int(10))
        #expect(sampler?["start_at_step"] == .int(4), "the last int(10 × 0.6) = 6 of 10 steps, as Chisel ran them")
        #expect(sampler?["sampler_name"] == "dpmpp_2m" && sampler?["scheduler"] == "karras")
        #expect(sampler?["cfg"]?.doubleValue == 6)
        #expect(node("CLIPSetLastLayer")?["inputs"]?["stop_at_clip_layer"] == .int(-2))
        let texts: [String] = nodes.filter { $0["class_type"] == "CLIPTextEncode" }.compactMap { $0["inputs"]?["text"]?.stringValue }
        #expect(texts.contains(prompt))
        for type in ["CheckpointLoaderSimple", "LoadImage", "VAEEncode", "VAEDecode", "SaveImage"] {
            #expect(node(type) != nil, "no \(type)")
        }
        // The editor's workflow beside it: the same nodes, linked.
        let workflow = try JSONParser.parse(try #require(text["workflow"], "no workflow chunk a ComfyUI reader finds"))
        guard case .array(let uiNodes)? = workflow["nodes"] else {
            Issue.record("the workflow has no nodes")
            return
        }
        #expect(uiNodes.count == nodes.count)
        #expect(uiNodes.contains { $0["type"] == "CLIPTextEncode" && $0["widgets_values"] == .array([.string(prompt)]) })
    }

    /// Masks and paste-back have no ComfyUI core equivalent here: no prompt rather than a wrong one.
    @Test func graphsWithoutAnEquivalentGetNoPrompt() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let result = try CLI.run(["inpaint", "--model", Self.model, "--image", Self.image, "--mask", Self.mask, "--prompt", "x",
                                  "--steps", "2", "--seed", "1", "--output", out])
        #expect(result.status == 0, "\(result.stderr)")
        let text = try Self.uncompressedText(out)
        #expect(text["prompt"] == nil && text["parameters"] != nil)
    }
}

/// AUTOMATIC1111's sampler labels and schedule types on the command line.
@Suite struct CLIA1111NameTests {
    static let base = ["img2img", "--model", CLIComfyTests.model, "--image", CLIComfyTests.image, "--print-graph"]

    @Test func samplerAndScheduleTypeNameTheKind() throws {
        let printed = try CLI.run(Self.base + ["--scheduler", "DPM++ 2M", "--schedule-type", "Karras"])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("\"scheduler\": \"dpmpp_2m_karras\""), "\(printed.stdout)")
        let alias = try CLI.run(Self.base + ["--scheduler", "k_euler_a", "--strength-mode", "a1111"])
        #expect(alias.status == 0 && alias.stdout.contains("\"strength_mode\": \"a1111\""), "\(alias.stderr)")
    }

    @Test func samplersAndSchedulesChiselLacksAreNamed() throws {
        // Found when the graph is validated, before anything runs.
        let dpm2 = try CLI.run(Array(Self.base.dropLast()) + ["--scheduler", "DPM2 a", "--output", "/tmp/never-written.png"])
        #expect(dpm2.status != 0 && dpm2.stderr.contains("AUTOMATIC1111's sampler 'DPM2 a' is not implemented"), "\(dpm2.stderr)")
        let exponential = try CLI.run(Self.base + ["--scheduler", "Euler", "--schedule-type", "Exponential"])
        #expect(exponential.status != 0 && exponential.stderr.contains("schedule type 'Exponential'"), "\(exponential.stderr)")
    }
}

/// `chisel run --from` on an image AUTOMATIC1111 made: the graph its `parameters` describe.
@Suite struct CLIA1111ImportTests {
    static func a1111Image(_ infotext: String, in temp: TemporaryFolder, name: String = "a1111.png") throws -> String {
        let path = temp.path(name)
        let image = try Image(width: 32, height: 32, layout: .rgb, filledWith: 0.5)
        try ImageWriter.write(image, to: path, options: ImageEncodeOptions(format: .png, text: [("parameters", infotext)]))
        return path
    }

    @Test func txt2imgParametersBecomeTheGraphAndRun() throws {
        let temp = try TemporaryFolder()
        let image = try Self.a1111Image("""
            a lake at dawn, (mist:1.2)
            Negative prompt: blurry
            Steps: 4, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 32x32, Model hash: 0123456789, Model: sd15, Clip skip: 2, RNG: CPU, Version: v1.10.1
            """, in: temp)
        let printed = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let graph = try JSONParser.parse(printed.stdout)
        let nodes = try #require(graph["nodes"])
        #expect(nodes["noised"]?["params"]?["scheduler"] == "dpmpp_2m_karras")
        #expect(nodes["noised"]?["params"]?["steps"] == .int(4) && nodes["noised"]?["params"]?["seed"] == .int(42))
        #expect(nodes["edited"]?["params"]?["guidance"]?.doubleValue == 7)
        #expect(nodes["text"]?["params"]?["clip_skip"] == .int(1) && nodes["text"]?["params"]?["mode"] == "chunk",
                "A1111's clip skip 2 and its emphasis")
        #expect(nodes["text"]?["params"]?["prompt"] == "a lake at dawn, (mist:1.2)")
        #expect(nodes["latent"]?["params"]?["width"] == .int(32))
        let ran = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--output", temp.path("out")])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(FileManager.default.fileExists(atPath: temp.path("out/a1111-chisel.png")))
    }

    @Test func img2imgParametersTakeTheirImageAndA1111sStepCount() throws {
        let temp = try TemporaryFolder()
        let image = try Self.a1111Image("""
            a boat
            Steps: 6, Sampler: Euler a, CFG scale: 5.5, Seed: 7, Size: 48x32, Model: sd15, Denoising strength: 0.5, Emphasis: None, RNG: NV
            """, in: temp)
        let printed = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let nodes = try #require(try JSONParser.parse(printed.stdout)["nodes"])
        #expect(nodes["noised"]?["params"]?["strength_mode"] == "a1111" && nodes["noised"]?["params"]?["rng"] == "cuda")
        #expect(nodes["text"]?["params"]?["mode"] == "truncate", "Emphasis: None is diffusers' verbatim prompt")
        let ran = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--output", temp.path("out"),
                               "--set", "input.path=\(CLIComfyTests.image)"])
        #expect(ran.status == 0, "\(ran.stderr)")
        let without = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--output", temp.path("out2")])
        #expect(without.status != 0 && without.stderr.contains("input.path"), "\(without.stderr)")
    }

    /// `--token-merging` is written as A1111's `Token merging ratio`, and read back into denoise's `token_merging`.
    @Test func tokenMergingRatioGoesThereAndBack() throws {
        let temp = try TemporaryFolder()
        let edit = try CLI.run(["img2img", "--model", CLIComfyTests.model, "--image", CLIComfyTests.image, "--prompt", "a boat",
                                "--steps", "4", "--token-merging", "0.5", "--output", temp.path("merged.png")])
        #expect(edit.status == 0, "\(edit.stderr)")
        let parameters = try ImageReader.read(path: temp.path("merged.png")).text(forKey: "parameters") ?? ""
        #expect(parameters.contains("Token merging ratio: 0.5, RNG:"), "\(parameters)")
        let image = try Self.a1111Image("a boat\nSteps: 6, Sampler: Euler a, CFG scale: 5, Seed: 7, Size: 48x32, Denoising strength: 0.5, "
                                        + "Token merging ratio: 0.3, RNG: CPU", in: temp)
        let printed = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--print-graph"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let nodes = try #require(try JSONParser.parse(printed.stdout)["nodes"])
        #expect(nodes["edited"]?["params"]?["token_merging"]?.doubleValue == 0.3)
        let absurd = try CLI.run(["img2img", "--model", CLIComfyTests.model, "--image", CLIComfyTests.image, "--prompt", "x",
                                  "--token-merging", "2", "--output", temp.path("never.png")])
        #expect(absurd.status != 0 && absurd.stderr.contains("--token-merging"), "\(absurd.stderr)")
    }

    @Test func whatCannotBeRunIsNamed() throws {
        let temp = try TemporaryFolder()
        let image = try Self.a1111Image("x\nSteps: 4, Sampler: DPM2 a, CFG scale: 7, Seed: 1, Size: 32x32", in: temp)
        let noModel = try CLI.run(["run", "--from", image, "--print-graph"])
        #expect(noModel.status != 0 && noModel.stderr.contains("give --model sd=PATH"), "\(noModel.stderr)")
        let sampler = try CLI.run(["run", "--from", image, "--model", "sd=\(CLIComfyTests.model)", "--print-graph"])
        #expect(sampler.status != 0 && sampler.stderr.contains("'DPM2 a' is not implemented"), "\(sampler.stderr)")
        // A ControlNet unit's control image is not in the file: the graph would not be the image's edit.
        let controlled = try Self.a1111Image("""
            x
            Steps: 4, Sampler: Euler, CFG scale: 7, Seed: 1, Size: 32x32, ControlNet 0: "Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1.0"
            """, in: temp, name: "controlled.png")
        let refused = try CLI.run(["run", "--from", controlled, "--model", "sd=\(CLIComfyTests.model)", "--print-graph"])
        #expect(refused.status != 0 && refused.stderr.contains("made with ControlNet 0") && refused.stderr.contains("--controlnet"),
                "\(refused.stderr)")
    }
}
