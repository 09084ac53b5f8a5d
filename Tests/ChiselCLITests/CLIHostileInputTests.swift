import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// What fault testing found, each reproduced as a stranger would hit it: images that carry a
/// graph, graphs that race or escape their folder, weights that hold NaN, paste-back outside the
/// mask, option values out of range, and the messages each of these gets.
@Suite struct CLIHostileInputTests {
    static let reference = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference").path
    static let amused = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/amused").path

    /// A PNG whose `chisel-graph` chunk holds `graph`, as a downloaded image could.
    static func imageCarrying(_ graph: String, at path: String) throws {
        var options = ImageEncodeOptions(format: .png)
        options.text = [(key: "chisel-graph", value: graph)]
        try ImageWriter.write(try patternImage(width: 16, height: 16), to: path, options: options)
    }

    // MARK: 1. Graphs from images

    @Test func aGraphFromAnImageWritesOnlyByFileNameUnderTheOutputFolderAndReplacesNothing() throws {
        let temp = try TemporaryFolder()
        let victim = try temp.write("keep me", to: "victim.txt")
        let outside = temp.path("up.png")
        let work = temp.url.appendingPathComponent("work/inner")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        let source = temp.path("source.png")
        try writeImage(try patternImage(width: 16, height: 16), to: source)
        let evil = temp.path("evil.png")
        try Self.imageCarrying("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "\(source)"}},
              "abs": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "\(victim)", "format": "png"}},
              "up": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "../../up.png"}}}}
            """, at: evil)

        let printed = try CLI.run(["run", "--from", evil, "--print-graph"], in: work)
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("\"save_image\"") && printed.stdout.contains(victim))
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path).isEmpty, "--print-graph runs nothing")

        let first = try CLI.run(["run", "--from", evil], in: work)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me")
        #expect(!FileManager.default.fileExists(atPath: outside))
        #expect(FileManager.default.fileExists(atPath: work.appendingPathComponent("victim.txt").path))
        #expect(FileManager.default.fileExists(atPath: work.appendingPathComponent("up.png").path))
        #expect(first.stderr.contains("writes by file name only"), "the rewrite is said: \(first.stderr)")

        // The files now exist: a second run refuses before anything runs, naming them.
        let again = try CLI.run(["run", "--from", evil], in: work)
        #expect(again.status == 1)
        #expect(again.errorLines.count == 2, "\(again.stderr)")
        #expect(again.stderr.contains("exists") && again.stderr.contains("--overwrite"))
        #expect(try CLI.run(["validate", "--from", evil], in: work).status == 1)
        #expect(try CLI.run(["run", "--from", evil, "--overwrite"], in: work).status == 0)

        // --output chooses the folder; the image's own folder is never written.
        let chosen = temp.url.appendingPathComponent("chosen")
        let elsewhere = try CLI.run(["run", "--from", evil, "--output", chosen.path], in: work)
        #expect(elsewhere.status == 0, "\(elsewhere.stderr)")
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: chosen.path)) == ["victim.txt", "up.png"])
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep me")
    }

    @Test func aGraphFromAnImageNamesAMissingModelAndTakesTheUsersOwn() throws {
        let temp = try TemporaryFolder()
        let image = temp.path("made.png")
        try Self.imageCarrying("""
            {"chisel": 1, "models": {"sd": {"path": "/nowhere/sd15"}}, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "\(image)"}},
              "latent": {"stage": "vae_encode", "inputs": {"model": "sd", "image": "input.image"}, "params": {"seed": 1}},
              "decoded": {"stage": "vae_decode", "inputs": {"model": "sd", "latent": "latent.latent"}},
              "save": {"stage": "save_image", "inputs": {"image": "decoded.image"}, "params": {"path": "round-trip.png"}}}}
            """, at: image)
        let missing = try CLI.run(["validate", "--from", image], in: temp.url)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("/nowhere/sd15") && missing.stderr.contains("--model sd=PATH"), "\(missing.stderr)")
        let mine = try CLI.run(["run", "--from", image, "--model", "sd=\(Self.reference)/sd1-tiny"], in: temp.url)
        #expect(mine.status == 0, "\(mine.stderr)")
        #expect(FileManager.default.fileExists(atPath: temp.path("round-trip.png")))
        let unknown = try CLI.run(["validate", "--from", image, "--model", "sdx=\(Self.reference)/sd1-tiny"], in: temp.url)
        #expect(unknown.status == 1 && unknown.stderr.contains("no model 'sdx'"), "\(unknown.stderr)")
    }

    // MARK: 2. Two outputs on one file

    @Test func twoSaveNodesWritingOneFileAreRefusedBeforeAnythingRuns() throws {
        let temp = try TemporaryFolder()
        let input = temp.path("in.png")
        try writeImage(try patternImage(width: 16, height: 16), to: input)
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "in.png"}},
              "a": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "same.png"}},
              "b": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "other.png"}}}}
            """, to: "two.json")
        #expect(try CLI.run(["validate", graph]).status == 0)
        for command in ["validate", "run"] {
            let clash = try CLI.run([command, graph, "--set", "b.path=\(temp.path("same.png"))"])
            #expect(clash.status == 1)
            #expect(clash.stderr.contains("nodes 'a' and 'b' both write"), "\(clash.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: temp.path("same.png")))
        // A save path that is a folder, or the input itself, is found at validation too.
        try FileManager.default.createDirectory(atPath: temp.path("folder.png"), withIntermediateDirectories: true)
        let folder = try CLI.run(["validate", graph, "--set", "a.path=\(temp.path("folder.png"))"])
        #expect(folder.status == 1 && folder.stderr.contains("is a folder"), "\(folder.stderr)")
        let over = try CLI.run(["validate", graph, "--set", "a.path=\(input)"])
        #expect(over.status == 1 && over.stderr.contains("input files"), "\(over.stderr)")
        let device = try CLI.run(["validate", graph, "--set", "a.path=/dev/full", "--set", "a.format=png"])
        #expect(device.status == 1 && device.stderr.contains("not a regular file"), "\(device.stderr)")
        let noExtension = try CLI.run(["validate", graph, "--set", "a.path=\(temp.path("o"))"])
        #expect(noExtension.status == 1 && noExtension.stderr.contains("no extension"), "\(noExtension.stderr)")
    }

    // MARK: 3. NaN weights

    /// sd1-tiny with every value of the VAE decoder's last convolution set to NaN (F16 0x7E00).
    static func nanVAEModel(in temp: TemporaryFolder) throws -> String {
        let model = temp.path("nan-vae")
        try FileManager.default.copyItem(atPath: "\(reference)/sd1-tiny", toPath: model)
        let file = model + "/vae/diffusion_pytorch_model.safetensors"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONParser.parse(Array(bytes[8..<(8 + headerLength)]))
        guard case .string("F16")? = header["decoder.conv_out.weight"]?["dtype"],
            case .array(let range)? = header["decoder.conv_out.weight"]?["data_offsets"],
            case .int(let start) = range[0], case .int(let end) = range[1]
        else {
            Issue.record("the fixture's decoder.conv_out.weight is not an F16 tensor")
            return model
        }
        for i in stride(from: 8 + headerLength + start, to: 8 + headerLength + end, by: 2) {
            bytes[i] = 0x00
            bytes[i + 1] = 0x7E
        }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return model
    }

    @Test func nanWeightsFailTheRunNamingTheNetworkAndDeepInspectionFindsThem() throws {
        let temp = try TemporaryFolder()
        let model = try Self.nanVAEModel(in: temp)
        let image = temp.path("in.png")
        try writeImage(try patternImage(width: 32, height: 32), to: image)
        let out = temp.path("out.png")
        let run = try CLI.run(["img2img", "--model", model, "--image", image, "--steps", "2", "--seed", "1", "--output", out])
        #expect(run.status == 1)
        #expect(run.stderr.contains("VAE decoder produced NaN"), "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out), "no black image is written")

        let deep = try CLI.run(["model", "inspect", model, "--deep"])
        #expect(deep.status == 1)
        #expect(deep.stderr.contains("decoder.conv_out.weight holds 216 NaN"), "\(deep.stderr)")
        #expect(try CLI.run(["model", "inspect", "\(Self.reference)/sd1-tiny", "--deep"]).status == 0)
    }

    // MARK: 4. Paste-back

    /// A random RGB image and a binary rectangle mask of its size.
    static func randomImageAndMask(width: Int, height: Int, in temp: TemporaryFolder) throws -> (String, String, [Bool]) {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var pixels: [Float] = []
        for _ in 0..<(3 * width * height) {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            pixels.append(Float(state >> 56) / 255)
        }
        var inside: [Bool] = []
        for y in 0..<height {
            for x in 0..<width { inside.append((height / 4..<height / 2 + 4).contains(y) && (width / 4..<width / 2 + 5).contains(x)) }
        }
        let image = temp.path("image-\(width).png"), mask = temp.path("mask-\(width).png")
        try writeImage(try Image(width: width, height: height, layout: .rgb, pixels: pixels), to: image)
        try writeImage(try Image(width: width, height: height, layout: .gray, pixels: inside.map { $0 ? 1 : 0 }), to: mask)
        return (image, mask, inside)
    }

    /// Pixels changed outside and inside the mask.
    static func changes(_ input: String, _ output: String, inside: [Bool]) throws -> (outside: Int, inside: Int) {
        let a = try ImageReader.read(path: input).image, b = try ImageReader.read(path: output).image.converted(to: .rgb)
        guard a.width == b.width, a.height == b.height else { return (-1, -1) }
        var counts = (outside: 0, inside: 0)
        for i in 0..<a.planeSize where (0..<3).contains(where: { a.pixels[$0 * a.planeSize + i] != b.pixels[$0 * b.planeSize + i] }) {
            if inside[i] { counts.inside += 1 } else { counts.outside += 1 }
        }
        return counts
    }

    @Test(arguments: [(64, 48), (37, 29)])
    func inpaintingLeavesEveryPixelOutsideABinaryMaskBitIdentical(width: Int, height: Int) throws {
        let temp = try TemporaryFolder()
        let (image, mask, inside) = try Self.randomImageAndMask(width: width, height: height, in: temp)
        let runs: [(String, [String])] = [
            ("sd", ["--model", "\(Self.reference)/sd1-tiny", "--steps", "2"]),
            ("sd-only-masked", ["--model", "\(Self.reference)/sd1-tiny", "--steps", "2", "--only-masked",
                                "--only-masked-padding", "4", "--width", "32", "--height", "32"]),
            ("amused", ["--model", "\(Self.amused)/tiny", "--steps", "2"]),
        ]
        for (name, options) in runs {
            let out = temp.path("\(name).png")
            let result = try CLI.run(["inpaint", "--image", image, "--mask", mask, "--prompt", "x", "--seed", "3",
                                      "--output", out] + options)
            #expect(result.status == 0, "\(name): \(result.stderr)")
            let changed = try Self.changes(image, out, inside: inside)
            #expect(changed.outside == 0, "\(name) \(width)×\(height): \(changed.outside) pixels changed outside the mask")
            #expect(changed.inside > inside.filter { $0 }.count / 2, "\(name): the mask's area is repainted")
        }
        // AUTOMATIC1111's outward blur, asked for by name, reaches past the mask.
        let outward = temp.path("outward.png")
        let result = try CLI.run(["inpaint", "--image", image, "--mask", mask, "--prompt", "x", "--seed", "3", "--output", outward,
                                  "--model", "\(Self.reference)/sd1-tiny", "--steps", "2", "--mask-blur-mode", "outward"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Self.changes(image, outward, inside: inside).outside > 0)
    }

    // MARK: 5, 6. Option values

    @Test func negativeSeedDrawsOneAndSeedsCoverTorchsWholeRange() throws {
        let temp = try TemporaryFolder()
        let image = temp.path("in.png")
        try writeImage(try patternImage(width: 16, height: 16), to: image)
        let base = ["img2img", "--model", "\(Self.reference)/sd1-tiny", "--image", image, "--steps", "2"]
        let drawn = try CLI.run(base + ["--seed", "-1", "--output", temp.path("drawn.png")])
        #expect(drawn.status == 0, "\(drawn.stderr)")
        #expect(drawn.stderr.contains("(drawn at random)"), "\(drawn.stderr)")

        let top = "18446744073709551615"
        let a = try CLI.run(base + ["--seed", top, "--output", temp.path("a.png")])
        let b = try CLI.run(base + ["--seed", top, "--output", temp.path("b.png")])
        let c = try CLI.run(base + ["--seed", "18446744073709551614", "--output", temp.path("c.png")])
        #expect(a.status == 0 && b.status == 0 && c.status == 0, "\(a.stderr)\(c.stderr)")
        let imageA = try ImageReader.read(path: temp.path("a.png"))
        #expect(imageA.image.pixels == (try ImageReader.read(path: temp.path("b.png"))).image.pixels)
        #expect(imageA.image.pixels != (try ImageReader.read(path: temp.path("c.png"))).image.pixels)
        #expect(imageA.text(forKey: "chisel-graph")?.contains("\"seed\":\(top)") == true)
        // The graph it carries runs again with that seed, exactly.
        let again = try CLI.run(["run", "--from", temp.path("a.png"), "--output", temp.path("again")])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try ImageReader.read(path: temp.path("again/a.png")).image.pixels == imageA.image.pixels)

        let negative = try CLI.run(base + ["--seed", "-5", "--output", temp.path("n.png")])
        #expect(negative.status == 64 && negative.stderr.contains("a seed is -1"), "\(negative.stderr)")
    }

    @Test(arguments: [
        (["--strength", "1.5"], "--strength 1.5 is out of range (allowed: 0…1)"),
        (["--strength", "-1"], "--strength -1 is out of range"),
        (["--guidance", "-5"], "--guidance -5 is out of range (allowed: 0…100)"),
        (["--guidance", "inf"], "--guidance inf is infinite"),
        (["--guidance", "nan"], "--guidance nan is not a number"),
        (["--mask-blur", "1e9"], "--mask-blur 1000000000 is out of range (allowed: 0…512)"),
        (["--steps", "0"], "--steps 0 is out of range (allowed: 1…1000)"),
    ])
    func optionValuesOutOfTheirParametersRangeAreUsageErrors(option: [String], message: String) throws {
        let result = try CLI.run(["inpaint", "--model", "\(Self.reference)/sd1-tiny", "--image", "x.png", "--mask", "m.png"] + option)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    // MARK: 7. Variables

    @Test func anUnknownVariableIsAnErrorWithASuggestion() throws {
        let graph = CLI.repository.appendingPathComponent("docs/examples/variables.json").path
        let ghost = try CLI.run(["validate", graph, "--var", "ghost=1"])
        #expect(ghost.status == 1)
        #expect(ghost.stderr.contains("no variable 'ghost'"), "\(ghost.stderr)")
        let typo = try CLI.run(["validate", graph, "--var", "sise=64"])
        #expect(typo.stderr.contains("did you mean 'size'"), "\(typo.stderr)")
        #expect(try CLI.run(["validate", graph, "--var", "size=64"]).status == 0)
    }

    // MARK: 8. Inspection agrees with loading

    @Test func inspectionReportsWhatLoadingWouldHit() throws {
        let temp = try TemporaryFolder()
        let model = temp.path("broken")
        try FileManager.default.copyItem(atPath: "\(Self.reference)/sd1-tiny", toPath: model)
        let schedulerFile = model + "/scheduler/scheduler_config.json"
        let scheduler = try String(contentsOfFile: schedulerFile, encoding: .utf8)
        try scheduler.replacingOccurrences(of: "\"scaled_linear\"", with: "\"bogus\"")
            .write(toFile: schedulerFile, atomically: true, encoding: .utf8)
        try "garbage".write(toFile: model + "/tokenizer/vocab.json", atomically: true, encoding: .utf8)
        let indexFile = model + "/model_index.json"
        let index = try String(contentsOfFile: indexFile, encoding: .utf8)
        try index.replacingOccurrences(of: "\"UNet2DConditionModel\"", with: "\"UNet9000Model\"")
            .replacingOccurrences(of: "\"requires_safety_checker\"", with: "\"controlnet\": [\"diffusers\", \"ControlNetModel\"], \"requires_safety_checker\"")
            .write(toFile: indexFile, atomically: true, encoding: .utf8)

        let report = try CLI.run(["model", "inspect", model])
        #expect(report.status == 1)
        #expect(!report.stdout.contains("problems: none"))
        for expected in ["'bogus'", "vocab.json", "UNet9000Model", "no folder controlnet/"] {
            #expect(report.stderr.contains(expected), "\(expected) in \(report.stderr)")
        }
        let image = temp.path("in.png")
        try writeImage(try patternImage(width: 16, height: 16), to: image)
        let load = try CLI.run(["img2img", "--model", model, "--image", image, "--steps", "2", "--output", temp.path("o.png")])
        #expect(load.status == 1, "loading refuses what inspection reports")
        #expect(try CLI.run(["model", "inspect", "\(Self.reference)/sd1-tiny"]).stdout.contains("problems: none"))
    }
}
