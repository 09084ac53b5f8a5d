import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img` and `chisel inpaint` driven as a user would, on the tiny random-weight
/// models, against diffusers' pipeline outputs (Tests/ChiselModelStagesTests/Fixtures/pipelines).
@Suite struct CLIEditTests {
    static let reference = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference").path
    static let pipelines = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines").path

    /// max and mean |Δ| between a saved 8-bit PNG and diffusers' float output (H×W×3).
    static func difference(_ path: String, _ fixture: String) throws -> (max: Float, mean: Float) {
        let image = try ImageReader.read(path: path).image
        let expected = try SafeTensorsFile(path: "\(pipelines)/\(fixture).safetensors").floats("output")
        let n = image.width * image.height
        #expect(expected.count == 3 * n)
        var worst: Float = 0, sum: Float = 0
        for i in 0..<n {
            for c in 0..<3 {
                let d = abs(image.pixels[c * n + i] - expected[i * 3 + c])
                worst = max(worst, d)
                sum += d
            }
        }
        return (worst, sum / Float(3 * n))
    }

    /// The PNG's samples (planar floats) and its text chunks.
    static func decoded(_ path: String) throws -> DecodedImage { try ImageReader.read(path: path) }

    @Test func img2imgGivesDiffusersImage() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("fox.png")
        let result = try CLI.run([
            "img2img", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png",
            "--prompt", "an old stone lighthouse on a cliff at sunset",
            "--steps", "10", "--strength", "0.8", "--guidance", "7.5", "--seed", "107", "--scheduler", "Euler a",
            "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let (worst, mean) = try Self.difference(out, "img2img_sd1_euler_a_s080")
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
        // AUTOMATIC1111's PNG info, and the graph that made it.
        let png = try Self.decoded(out)
        #expect(CLI.withoutVersion(png.text(forKey: "parameters")) == """
            an old stone lighthouse on a cliff at sunset
            Steps: 10, Sampler: Euler a, Schedule type: Uniform, CFG scale: 7.5, Seed: 107, Size: 48x32, Model: sd1-tiny, Denoising strength: 0.8, Emphasis: None, RNG: CPU
            """)
        #expect(png.text(forKey: "chisel-graph")?.contains("\"stage\":\"denoise\"") == true)
    }

    @Test func singleFilesWithHintsAndSD2VPredictionWork() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("sd2.png")
        let result = try CLI.run([
            "img2img", "--model", "\(Self.reference)/sd2-tiny", "--image", "\(Self.pipelines)/image.png",
            "--prompt", "an old stone lighthouse on a cliff at sunset", "--negative-prompt", "blurry, low quality",
            "--steps", "10", "--strength", "0.5", "--seed", "201", "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let (worst, mean) = try Self.difference(out, "img2img_sd2_ddim_s050")
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
    }

    @Test func inpaintWithoutPasteBackGivesDiffusersImageAndWithItKeepsTheUnmaskedPixels() throws {
        let temp = try TemporaryFolder()
        let common = [
            "inpaint", "--model", "\(Self.reference)/sd1-inpaint-tiny", "--image", "\(Self.pipelines)/image.png",
            "--mask", "\(Self.pipelines)/mask.png", "--prompt", "a red fox sitting in a snowy forest, highly detailed",
            "--negative-prompt", "blurry, low quality", "--steps", "10",
            "--strength", "1.0", "--guidance", "7.5", "--seed", "301", "--scheduler", "auto",
        ]
        let raw = temp.path("raw.png"), pasted = temp.path("pasted.png")
        let first = try CLI.run(common + ["--paste-back", "false", "--output", raw])
        #expect(first.status == 0, "\(first.stderr)")
        let (worst, mean) = try Self.difference(raw, "inpaint9_pndm_s100")
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")

        let second = try CLI.run(common + ["--output", pasted])
        #expect(second.status == 0, "\(second.stderr)")
        let input = try ImageReader.read(path: "\(Self.pipelines)/image.png").image.converted(to: .rgb)
        let mask = try ImageReader.read(path: "\(Self.pipelines)/mask.png").image
        let output = try ImageReader.read(path: pasted).image
        let (w, h) = (input.width, input.height)
        let n = w * h
        let masked = (0..<n).filter { mask.pixels[$0] > 0 }
        #expect(!masked.isEmpty)
        // Beyond the blur's reach of the mask (the feathered mask is 0 there) the input's samples
        // are copied, bit for bit; inside it the result differs from the input.
        var far = 0
        for i in 0..<n {
            let near = masked.contains { j in
                let (dx, dy) = (j % w - i % w, j / w - i / w)
                return abs(dx) <= 12 && abs(dy) <= 12  // the separable blur reaches 3σ along each axis
            }
            guard !near else { continue }
            far += 1
            #expect((0..<3).allSatisfy { output.pixels[$0 * n + i] == input.pixels[$0 * n + i] }, "pixel \(i)")
        }
        #expect(far > 0)
        #expect(masked.contains { i in (0..<3).contains { output.pixels[$0 * n + i] != input.pixels[$0 * n + i] } })
        let withoutBlur = temp.path("sharp.png")
        let third = try CLI.run(common + ["--mask-blur", "0", "--output", withoutBlur])
        #expect(third.status == 0, "\(third.stderr)")
        let sharp = try ImageReader.read(path: withoutBlur).image
        for i in 0..<n where mask.pixels[i] == 0 {
            #expect((0..<3).allSatisfy { sharp.pixels[$0 * n + i] == input.pixels[$0 * n + i] }, "pixel \(i)")
        }
    }

    @Test func fourChannelInpaintingBlendsAsDiffusers() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("blend.png")
        let result = try CLI.run([
            "inpaint", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png",
            "--mask", "\(Self.pipelines)/mask.png", "--prompt", "a bowl of ripe oranges on a wooden table", "--steps", "10",
            "--strength", "1.0", "--guidance", "7.5", "--seed", "402", "--scheduler", "euler_a", "--paste-back", "false",
            "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let (worst, mean) = try Self.difference(out, "inpaint4_euler_a_s100")
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
    }

    /// samples/editing/sdedit.json (separate vae_encode, add_noise, denoise, vae_decode nodes)
    /// equals `chisel img2img` with the same settings, and `chisel run --from` on its output
    /// reproduces it bit for bit, a seed drawn at random included.
    @Test func handWrittenGraphEqualsTheCommandAndRunFromReproducesIt() throws {
        let temp = try TemporaryFolder()
        let small = temp.path("small.png")
        try writeImage(try patternImage(width: 64, height: 48, seed: 4), to: small)
        let graphOut = temp.path("graph.png"), commandOut = temp.path("command.png")
        let graph = try CLI.run([
            "run", CLI.repository.appendingPathComponent("samples/editing/sdedit.json").path, "--var", "width=64",
            "--var", "model=\(Self.reference)/sd1-tiny", "--set", "input.path=\(small)", "--set", "save.path=\(graphOut)",
        ])
        #expect(graph.status == 0, "\(graph.stderr)")
        let command = try CLI.run([
            "img2img", "--model", "\(Self.reference)/sd1-tiny", "--image", small, "--prompt", "a lake at sunset, oil painting",
            "--negative-prompt", "blurry, low quality", "--scheduler", "euler_a", "--steps", "20", "--strength", "0.6",
            "--guidance", "7.5", "--seed", "7", "--output", commandOut,
        ])
        #expect(command.status == 0, "\(command.stderr)")
        #expect(try Self.decoded(graphOut).image.pixels == (try Self.decoded(commandOut).image.pixels))

        // A random seed: the saved graph records the seed drawn, so --from gives the same image.
        let random = temp.path("random.png")
        let drawn = try CLI.run([
            "img2img", "--model", "\(Self.reference)/sd1-tiny", "--image", small, "--prompt", "a boat", "--steps", "6",
            "--scheduler", "euler_a", "--output", random,
        ])
        #expect(drawn.status == 0, "\(drawn.stderr)")
        #expect(drawn.stderr.contains("(drawn at random)"))
        let before = try Self.decoded(random)
        // A graph from an image writes by file name under --output, never back over the image.
        let again = try CLI.run(["run", "--from", random, "--output", temp.path("again")])
        #expect(again.status == 0, "\(again.stderr)")
        let after = try Self.decoded(temp.path("again/random.png"))
        #expect(after.image.pixels == before.image.pixels)
        #expect(after.text(forKey: "parameters") == before.text(forKey: "parameters"))
    }

    @Test func printGraphWritesAGraphThatValidates() throws {
        let temp = try TemporaryFolder()
        let printed = try CLI.run([
            "inpaint", "--model", "\(Self.reference)/sd1-inpaint-tiny", "--image", "\(Self.pipelines)/image.png",
            "--mask", "\(Self.pipelines)/mask.png", "--prompt", "x", "--print-graph",
        ])
        #expect(printed.status == 0, "\(printed.stderr)")
        let file = try temp.write(printed.stdout, to: "printed.json")
        let validation = try CLI.run(["validate", file])
        #expect(validation.status == 0, "\(validation.stderr)")
        for stage in ["vae_encode", "add_noise", "denoise", "vae_decode", "composite", "save_image"] {
            #expect(printed.stdout.contains("\"\(stage)\""))
        }
    }

    @Test(arguments: [
        (["--strength", "0"], "strength must be in (0, 1]"),
        (["--steps", "3", "--strength", "0.2"], "leave no step to run"),
        (["--scheduler", "warp_drive"], "unknown scheduler 'warp_drive'"),
    ])
    func badSettingsAreValidationErrorsNamingTheParameter(extra: [String], message: String) throws {
        let result = try CLI.run([
            "img2img", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png", "--output", "/tmp/never.png",
        ] + extra)
        #expect(result.status == 1)
        #expect(result.errorLines.contains { $0.contains("node 'noised'") && $0.contains(message) }, "\(result.stderr)")
    }

    @Test(arguments: ["fill", "latent_noise", "latent_nothing"])
    func maskedContentOptionsRunAndKeepTheUnmaskedPixels(content: String) throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let result = try CLI.run([
            "inpaint", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png",
            "--mask", "\(Self.pipelines)/mask.png", "--prompt", "x", "--steps", "4", "--strength", "0.8", "--seed", "5",
            "--masked-content", content, "--mask-blur", "0", "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let input = try ImageReader.read(path: "\(Self.pipelines)/image.png").image.converted(to: .rgb)
        let mask = try ImageReader.read(path: "\(Self.pipelines)/mask.png").image
        let output = try ImageReader.read(path: out).image
        let n = input.width * input.height
        for i in 0..<n where mask.pixels[i] == 0 {
            #expect((0..<3).allSatisfy { output.pixels[$0 * n + i] == input.pixels[$0 * n + i] }, "pixel \(i)")
        }
    }

    @Test func repeatedSDEditRunsEveryRoundAndOneRoundIsPlainImg2img() throws {
        let temp = try TemporaryFolder()
        let base = ["img2img", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png",
                    "--prompt", "a boat", "--steps", "4", "--seed", "9"]
        let plain = try CLI.run(base + ["--output", temp.path("plain.png")])
        let one = try CLI.run(base + ["--rounds", "1", "--output", temp.path("one.png")])
        let three = try CLI.run(base + ["--rounds", "3", "--output", temp.path("three.png")])
        #expect(plain.status == 0 && one.status == 0 && three.status == 0, "\(three.stderr)")
        let printed = try CLI.run(base + ["--rounds", "3", "--print-graph"])
        #expect(printed.stdout.contains("\"edited_3\""))
        #expect(try Self.decoded(temp.path("plain.png")).image.pixels == (try Self.decoded(temp.path("one.png")).image.pixels))
        #expect(try Self.decoded(temp.path("plain.png")).image.pixels != (try Self.decoded(temp.path("three.png")).image.pixels))
    }

    @Test func aMaskOfAnotherSizeIsResizedWithAWarning() throws {
        let temp = try TemporaryFolder()
        let result = try CLI.run([
            "inpaint", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png",
            "--mask", CLI.repository.appendingPathComponent("samples/images/lake-mask.png").path, "--prompt", "x",
            "--steps", "2", "--seed", "1", "--output", temp.path("out.png"),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning: node 'fitted_mask': mask is 512×384; resized to the image's 48×32"))
    }

    @Test func anEmptyMaskGivesTheInputBackWithAWarning() throws {
        let temp = try TemporaryFolder()
        let black = temp.path("black.png")
        try writeImage(try Image(width: 48, height: 32, layout: .gray, filledWith: 0), to: black)
        let out = temp.path("out.png")
        let result = try CLI.run([
            "inpaint", "--model", "\(Self.reference)/sd1-tiny", "--image", "\(Self.pipelines)/image.png", "--mask", black,
            "--prompt", "x", "--steps", "2", "--seed", "1", "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("the mask is empty"))
        let input = try ImageReader.read(path: "\(Self.pipelines)/image.png").image.converted(to: .rgb)
        #expect(try Self.decoded(out).image.pixels == input.pixels)
    }

    /// A batch edits a folder with the model loaded once, each image's prompt from its .txt when
    /// there is one, seeds as seed + index (or fixed).
    @Test func batchTakesPromptsFromTextFilesAndSeedsPerItem() throws {
        let temp = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: temp.path("in"), withIntermediateDirectories: true)
        for (i, name) in ["a", "b"].enumerated() {
            try writeImage(try patternImage(width: 64, height: 48, seed: i), to: temp.path("in/\(name).png"))
        }
        try "a harbor at dawn\n".write(toFile: temp.path("in/b.txt"), atomically: true, encoding: .utf8)
        let graph = CLI.repository.appendingPathComponent("samples/editing/sdedit.json").path
        let common = ["batch", graph, "--input", temp.path("in"), "--var", "width=64", "--var", "model=\(Self.reference)/sd1-tiny",
                      "--set", "noised.steps=4", "--set", "save.path={stem}.png", "--prompt-from-txt", "text"]
        let increment = try CLI.run(common + ["--output", temp.path("inc")])
        #expect(increment.status == 0, "\(increment.stderr)")
        let a = try Self.decoded(temp.path("inc/a.png")).text(forKey: "parameters") ?? ""
        let b = try Self.decoded(temp.path("inc/b.png")).text(forKey: "parameters") ?? ""
        #expect(a.hasPrefix("a lake at sunset, oil painting\n") && a.contains("Seed: 7,"), "\(a)")
        #expect(b.hasPrefix("a harbor at dawn\n") && b.contains("Seed: 8,"), "\(b)")
        let fixed = try CLI.run(common + ["--output", temp.path("fixed"), "--seed-mode", "fixed"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
        #expect((try Self.decoded(temp.path("fixed/b.png")).text(forKey: "parameters") ?? "").contains("Seed: 7,"))
        let bad = try CLI.run(common + ["--output", temp.path("bad"), "--prompt-from-txt", "nowhere"])
        #expect(bad.status == 1 && bad.stderr.contains("no node 'nowhere'"), "\(bad.stderr)")
    }

    /// Inputs that do not fit the checkpoint's UNet are found by `chisel validate`, before loading it.
    @Test func inpaintingInputsThatDoNotFitTheUNetAreValidationErrors() throws {
        let temp = try TemporaryFolder()
        func graph(_ model: String, maskedImage: Bool) throws -> String {
            try temp.write("""
                {"chisel": 1, "models": {"sd": {"path": "\(Self.reference)/\(model)"}},
                 "nodes": {
                  "input": {"stage": "load_image", "params": {"path": "\(Self.pipelines)/image.png", "mode": "rgb"}},
                  "mask": {"stage": "load_mask", "params": {"path": "\(Self.pipelines)/mask.png"}},
                  "text": {"stage": "encode_prompt", "inputs": {"model": "sd"}},
                  "latent": {"stage": "vae_encode", "inputs": {"model": "sd", "image": "input.image"}},
                  "noised": {"stage": "add_noise", "inputs": {"model": "sd", "latent": "latent.latent"}},
                  "masked": {"stage": "vae_encode", "inputs": {"model": "sd", "image": "input.image", "mask": "mask.mask"}},
                  "edited": {"stage": "denoise", "inputs": {"model": "sd", "latent": "noised.latent",
                             "conditioning": "text.conditioning", "mask": "mask.mask",
                             \(maskedImage ? "\"masked_image\": \"masked.latent\"" : "\"original\": \"latent.latent\"")}}
                 }}
                """, to: "\(model)-\(maskedImage).json")
        }
        let fourWithMaskedImage = try CLI.run(["validate", try graph("sd1-tiny", maskedImage: true)])
        #expect(fourWithMaskedImage.status == 1)
        #expect(fourWithMaskedImage.errorLines.contains {
            $0.contains("node 'edited' (nodes.edited.inputs.masked_image)") && $0.contains("takes 4 channels")
        }, "\(fourWithMaskedImage.stderr)")
        let nineWithoutMaskedImage = try CLI.run(["validate", try graph("sd1-inpaint-tiny", maskedImage: false)])
        #expect(nineWithoutMaskedImage.status == 1)
        #expect(nineWithoutMaskedImage.errorLines.contains { $0.contains("takes 9 channels (an inpainting model)") },
                "\(nineWithoutMaskedImage.stderr)")
        #expect(try CLI.run(["validate", try graph("sd1-tiny", maskedImage: false)]).status == 0)
        #expect(try CLI.run(["validate", try graph("sd1-inpaint-tiny", maskedImage: true)]).status == 0)
    }

    /// Only masked: the mask's area (with padding, grown to the working aspect) is inpainted at
    /// --width × --height and pasted back; outside the mask every pixel is the input's.
    @Test func onlyMaskedInpaintsTheMasksAreaAndPastesItBack() throws {
        let temp = try TemporaryFolder()
        let image = CLI.repository.appendingPathComponent("samples/images/lake.png").path
        let maskPath = CLI.repository.appendingPathComponent("samples/images/lake-mask.png").path
        let out = temp.path("out.png")
        let result = try CLI.run([
            "inpaint", "--model", "\(Self.reference)/sd1-inpaint-tiny", "--image", image, "--mask", maskPath, "--prompt", "a boat",
            "--steps", "3", "--seed", "3", "--only-masked", "--width", "64", "--height", "48", "--mask-blur", "0", "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let input = try ImageReader.read(path: image).image
        let mask = try ImageReader.read(path: maskPath).image
        let output = try ImageReader.read(path: out).image
        #expect(output.width == input.width && output.height == input.height)
        let n = input.width * input.height
        var inside = 0
        for i in 0..<n {
            let same = (0..<3).allSatisfy { output.pixels[$0 * n + i] == input.pixels[$0 * n + i] }
            if mask.pixels[i] == 0 { #expect(same, "pixel \(i) outside the mask changed") } else if !same { inside += 1 }
        }
        #expect(inside > 0, "the masked area was repainted")
        let printed = try CLI.run(["inpaint", "--model", "\(Self.reference)/sd1-inpaint-tiny", "--image", image, "--mask", maskPath,
                                   "--only-masked", "--print-graph"])
        #expect(printed.stdout.contains("\"paste_crop\"") && printed.stdout.contains("\"aspect_width\":512"))
    }
}
