import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img`, `chisel inpaint` and `chisel refine` on the tiny aMUSEd-layout models, as a
/// user runs them, against diffusers' aMUSEd pipelines (Tests/ChiselModelStagesTests/Fixtures/amused).
@Suite struct CLIMaskedTokenTests {
    static let models = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/amused").path
    static let cases = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/amused").path

    /// max |Δ| between a saved 8-bit PNG and the reference's float image (1×H×W×3).
    static func difference(_ path: String, _ fixture: String) throws -> Float {
        let image = try ImageReader.read(path: path).image
        let expected = try SafeTensorsFile(path: "\(cases)/\(fixture).safetensors").floats("image")
        let n = image.width * image.height
        #expect(expected.count == 3 * n)
        var worst: Float = 0
        for i in 0..<n { for c in 0..<3 { worst = max(worst, abs(image.pixels[c * n + i] - expected[i * 3 + c])) } }
        return worst
    }

    @Test(arguments: [("small", "img2img_small_s0.5_12steps_cfg10", ["--strength", "0.5", "--steps", "12", "--seed", "0"]),
                      ("tiny", "img2img_tiny_s0.8_6steps_nocfg", ["--strength", "0.8", "--steps", "6", "--guidance", "1", "--seed", "11"])])
    func img2imgGivesTheReferenceImage(model: String, fixture: String, options: [String]) throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let result = try CLI.run(["img2img", "--model", "\(Self.models)/\(model)", "--image", "\(Self.cases)/image-\(model).png",
                                  "--prompt", "a photo of a cat", "--output", out] + options)
        #expect(result.status == 0, "\(result.stderr)")
        // Same tokens → the same decoded pixels, up to the PNG's 8-bit rounding.
        let worst = try Self.difference(out, fixture)
        #expect(worst <= 2.5 / 255, "max \(worst * 255)/255")
        let png = try ImageReader.read(path: out)
        #expect(png.text(forKey: "parameters")?.contains("Sampler: MaskGIT") == true)
    }

    @Test func inpaintGivesTheReferenceImage() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("out.png")
        let result = try CLI.run([
            "inpaint", "--model", "\(Self.models)/small", "--image", "\(Self.cases)/image-small.png",
            "--mask", "\(Self.cases)/mask-small.png", "--prompt", "a photo of a cat", "--strength", "1.0", "--steps", "6",
            "--seed", "0", "--paste-back", "false", "--output", out,
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let worst = try Self.difference(out, "inpaint_small_s1.0_6steps_cfg10")
        #expect(worst <= 2.5 / 255, "max \(worst * 255)/255")
    }

    /// `--masked-content fill` encodes AUTOMATIC1111's fill instead of the image: the masked
    /// tokens are predicted either way, so what changes is the tokens along the mask's edge (the
    /// decode differs), and with paste-back the unmasked pixels are still the input's.
    @Test func inpaintFromTheFillChangesTheEdgeTokensOnly() throws {
        let temp = try TemporaryFolder()
        let options = ["inpaint", "--model", "\(Self.models)/small", "--image", "\(Self.cases)/image-small.png",
                       "--mask", "\(Self.cases)/mask-small.png", "--prompt", "a photo of a cat", "--steps", "6", "--seed", "0"]
        let (original, filled, pasted) = (temp.path("original.png"), temp.path("filled.png"), temp.path("pasted.png"))
        let a = try CLI.run(options + ["--paste-back", "false", "--output", original])
        let b = try CLI.run(options + ["--masked-content", "fill", "--paste-back", "false", "--output", filled])
        let c = try CLI.run(options + ["--masked-content", "fill", "--mask-blur", "0", "--output", pasted])
        #expect(a.status == 0 && b.status == 0 && c.status == 0, "\(a.stderr)\(b.stderr)\(c.stderr)")
        let (x, y) = (try ImageReader.read(path: original).image, try ImageReader.read(path: filled).image)
        #expect(x.pixels != y.pixels, "the fill changed no token")
        let source = try ImageReader.read(path: "\(Self.cases)/image-small.png").image
        let mask = try ImageReader.read(path: "\(Self.cases)/mask-small.png").image
        let result = try ImageReader.read(path: pasted).image
        let n = source.width * source.height
        var outside = 0
        for i in 0..<n where mask.pixels[i] == 0 {
            outside += 1
            for ch in 0..<3 { #expect(result.pixels[ch * n + i] == source.pixels[ch * n + i], "pixel \(i) outside the mask changed") }
        }
        #expect(outside > 0)
        let noise = try CLI.run(options + ["--masked-content", "latent_noise", "--output", temp.path("n.png")])
        #expect(noise.status != 0 && noise.stderr.contains("--masked-content"), "\(noise.stderr)")
    }

    /// `--token-mode refine`: Mask-Predict inside the mask from the fill's tokens. The unmasked
    /// pixels stay the input's (no feathering), the masked ones change, the result is not
    /// aMUSEd's MaskGIT inpainting, and options that belong to the other mode are refused.
    @Test func inpaintByRefinementRepaintsTheMaskOnly() throws {
        let temp = try TemporaryFolder()
        let options = ["inpaint", "--model", "\(Self.models)/small", "--image", "\(Self.cases)/image-small.png",
                       "--mask", "\(Self.cases)/mask-small.png", "--prompt", "a photo of a cat", "--masked-content", "fill",
                       "--seed", "0"]
        let (refined, predicted) = (temp.path("refined.png"), temp.path("predicted.png"))
        let a = try CLI.run(options + ["--token-mode", "refine", "--mask-blur", "0", "--output", refined])
        let b = try CLI.run(options + ["--mask-blur", "0", "--steps", "6", "--output", predicted])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        #expect(a.stderr.contains("refined"), "\(a.stderr)")
        let source = try ImageReader.read(path: "\(Self.cases)/image-small.png").image
        let mask = try ImageReader.read(path: "\(Self.cases)/mask-small.png").image
        let (result, other) = (try ImageReader.read(path: refined).image, try ImageReader.read(path: predicted).image)
        let n = source.width * source.height
        var inside = 0, changed = 0
        for i in 0..<n {
            if mask.pixels[i] == 0 {
                for ch in 0..<3 { #expect(result.pixels[ch * n + i] == source.pixels[ch * n + i], "pixel \(i) outside changed") }
            } else {
                inside += 1
                if (0..<3).contains(where: { result.pixels[$0 * n + i] != source.pixels[$0 * n + i] }) { changed += 1 }
            }
        }
        #expect(inside > 0 && changed > inside / 2, "\(changed) of \(inside) masked pixels changed")
        #expect(result.pixels != other.pixels)
        let strength = try CLI.run(options + ["--token-mode", "refine", "--strength", "0.5", "--output", temp.path("s.png")])
        #expect(strength.status != 0 && strength.stderr.contains("--strength"), "\(strength.stderr)")
        let sd = try CLI.run(["inpaint", "--model", CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path,
                              "--image", "\(Self.cases)/image-small.png", "--mask", "\(Self.cases)/mask-small.png",
                              "--token-mode", "refine", "--output", temp.path("sd.png")])
        #expect(sd.status != 0 && sd.stderr.contains("--token-mode"), "\(sd.stderr)")
    }

    @Test func refineRunsOnAnyImageAndWritesItsMasks() throws {
        let temp = try TemporaryFolder()
        // A JPEG of an odd size: the model works rounded down to its multiple (4 for the small
        // model, said in a warning); the result is pasted back at the input's size, the masks
        // keep the size the model worked at.
        let image = try patternImage(width: 37, height: 22)
        let input = temp.path("odd.jpg")
        try writeImage(image, to: input)
        let (out, mask, confidence) = (temp.path("refined.png"), temp.path("mask.png"), temp.path("confidence.png"))
        let result = try CLI.run(["refine", "--model", "\(Self.models)/small", "--image", input, "--output", out,
                                  "--mask-output", mask, "--confidence-output", confidence, "--threshold", "0.2"])
        #expect(result.status == 0, "\(result.stderr)")
        for path in [mask, confidence] {
            let written = try ImageReader.read(path: path).image
            #expect(written.width == 36 && written.height == 20, "\(path)")
        }
        let refined = try ImageReader.read(path: out).image
        #expect(refined.width == 37 && refined.height == 22)
        #expect(result.stderr.contains("37×22 rounded down to 36×20, a multiple of 4"), "\(result.stderr)")
        #expect(result.stderr.contains("mean log-likelihood"))
    }

    /// With paste-back (the default) the pixels of unchanged tokens are the input's own; without
    /// it, the whole image is the VQ model's decode.
    @Test func refinePastesBackOnlyChangedTokens() throws {
        let temp = try TemporaryFolder()
        let input = temp.path("in.png")
        try writeImage(try patternImage(width: 32, height: 24), to: input)
        let (pasted, whole) = (temp.path("pasted.png"), temp.path("whole.png"))
        let options = ["--model", "\(Self.models)/small", "--image", input, "--threshold", "0.2"]
        let first = try CLI.run(["refine"] + options + ["--mask-blur", "0", "--output", pasted])
        let second = try CLI.run(["refine"] + options + ["--paste-back", "false", "--output", whole])
        #expect(first.status == 0 && second.status == 0, "\(first.stderr)\(second.stderr)")
        let (source, a, b) = (try ImageReader.read(path: input).image, try ImageReader.read(path: pasted).image,
                              try ImageReader.read(path: whole).image)
        // Where the decode differs from the input, the pasted image must take one or the other, and both happen.
        var kept = 0, decoded = 0
        for i in 0..<a.pixels.count where b.pixels[i] != source.pixels[i] {
            if a.pixels[i] == source.pixels[i] { kept += 1 } else if a.pixels[i] == b.pixels[i] { decoded += 1 }
            #expect(a.pixels[i] == source.pixels[i] || a.pixels[i] == b.pixels[i], "value \(i) is neither input nor decode")
        }
        #expect(kept > 0 && decoded > 0, "kept \(kept), decoded \(decoded) of \(a.pixels.count)")
    }

    @Test func errorsNameTheProblem() throws {
        let temp = try TemporaryFolder()
        // A folder missing a component.
        let broken = temp.path("broken")
        try FileManager.default.copyItem(atPath: "\(Self.models)/tiny", toPath: broken)
        try FileManager.default.removeItem(atPath: broken + "/transformer")
        let missing = try CLI.run(["img2img", "--model", broken, "--image", "\(Self.cases)/image-tiny.png",
                                   "--output", temp.path("x.png")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("transformer"), "\(missing.stderr)")
        // A mask that covers no token.
        let black = temp.path("black.png")
        try writeImage(try Image(width: 16, height: 16, layout: .gray, filledWith: 0), to: black)
        let empty = try CLI.run(["inpaint", "--model", "\(Self.models)/small", "--image", "\(Self.cases)/image-small.png",
                                 "--mask", black, "--output", temp.path("y.png")])
        // As SD inpainting does: a warning, and the input comes back unchanged (pasted back).
        #expect(empty.status == 0, "\(empty.stderr)")
        #expect(empty.stderr.contains("warning:") && empty.stderr.contains("covers no token"), "\(empty.stderr)")
        let input = try ImageReader.read(path: "\(Self.cases)/image-small.png").image.converted(to: .rgb)
        #expect(try ImageReader.read(path: temp.path("y.png")).image.pixels == input.pixels)
        // Steps below 1, and options that belong to Stable Diffusion.
        let steps = try CLI.run(["img2img", "--model", "\(Self.models)/tiny", "--image", "\(Self.cases)/image-tiny.png",
                                 "--steps", "0"])
        #expect(steps.status != 0 && steps.stderr.contains("--steps"))
        let sampler = try CLI.run(["img2img", "--model", "\(Self.models)/tiny", "--image", "\(Self.cases)/image-tiny.png",
                                   "--scheduler", "euler", "--output", temp.path("z.png")])
        #expect(sampler.status != 0 && sampler.stderr.contains("--scheduler"), "\(sampler.stderr)")
        // Tokens of one model fed to another's transformer.
        let graph = try temp.write("""
            {"chisel": 1, "models": {"tiny": {"path": "\(Self.models)/tiny"}, "small": {"path": "\(Self.models)/small"}},
             "nodes": {
               "input": {"stage": "load_image", "params": {"path": "\(Self.cases)/image-small.png"}},
               "tokens": {"stage": "vq_encode", "inputs": {"model": "small", "image": "input.image"}},
               "text": {"stage": "encode_prompt", "inputs": {"model": "tiny"}},
               "masked": {"stage": "mask_tokens", "inputs": {"model": "tiny", "tokens": "tokens.tokens"}, "params": {"seed": 1}},
               "out": {"stage": "predict_tokens", "inputs": {"model": "tiny", "tokens": "masked.tokens", "conditioning": "text.conditioning"}}
             }}
            """, to: "mixed.json")
        let mixed = try CLI.run(["run", graph])
        #expect(mixed.status != 0)
        #expect(mixed.stderr.contains("masked") && mixed.stderr.contains("another model"), "\(mixed.stderr)")
    }

    @Test func inspectDescribesAnAmusedFolder() throws {
        let result = try CLI.run(["model", "inspect", "\(Self.models)/small"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("aMUSEd diffusers folder") && result.stdout.contains("64 codes, 2× downscale"))
        #expect(result.stdout.contains("mask token 64, cosine schedule") && result.stdout.contains("problems: none"))
    }

    @Test func sampleGraphsRunAsShipped() throws {
        let temp = try TemporaryFolder()
        for graph in ["txt2img", "img2img", "inpaint", "find-and-repaint"] {
            var arguments = ["run", CLI.repository.appendingPathComponent("samples/mvtm/\(graph).json").path,
                             "--set", "save.path=\(temp.path(graph + ".png"))"]
            if graph == "find-and-repaint" { arguments += ["--set", "save_mask.path=\(temp.path("mask.png"))"] }
            let result = try CLI.run(arguments)
            #expect(result.status == 0, "\(graph): \(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: temp.path(graph + ".png")), "\(graph)")
        }
        #expect(FileManager.default.fileExists(atPath: temp.path("mask.png")))
    }
}
