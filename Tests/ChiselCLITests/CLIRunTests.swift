import ChiselCore
import ChiselImageIO
import Foundation
import Testing

@Suite struct CLIRunTests {
    static var sampleGraphs: [String] {
        let folder = CLI.repository.appendingPathComponent("samples")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted()
    }

    @Test func thereAreSampleGraphs() {
        #expect(Self.sampleGraphs.count >= 5)
    }

    /// Every sample graph validates and runs as-is, and writes decodable files.
    @Test(arguments: sampleGraphs)
    func sampleGraphRuns(name: String) throws {
        let temp = try TemporaryFolder()
        let samples = try temp.copySamples()
        let graph = samples.appendingPathComponent(name).path
        let validation = try CLI.run(["validate", graph])
        #expect(validation.status == 0, "\(validation.stderr)")
        #expect(validation.stdout.contains("valid"))

        let run = try CLI.run(["run", graph])
        #expect(run.status == 0, "\(run.stderr)")
        let written = run.stdout.split(separator: "\n").filter { $0.hasPrefix("wrote ") }.map { String($0.dropFirst(6)) }
        #expect(!written.isEmpty)
        for path in written {
            #expect(path.hasPrefix(samples.appendingPathComponent("out").path), "\(path) is not under samples/out")
            let decoded = try ImageReader.read(path: path)
            #expect(decoded.image.width > 0)
        }
    }

    @Test func validateListsEveryProblemWithNodesAndExitsNonZero() throws {
        let temp = try TemporaryFolder()
        let graph = try temp.write("""
            {
              "chisel": 1,
              "nodes": {
                "input": {"stage": "load_image", "params": {"path": "missing.png", "mode": "cmyk"}},
                "fit": {"stage": "resize", "inputs": {"image": "input.picture"}, "params": {"width": -5}},
                "grow": {"stage": "grow_mask", "inputs": {"mask": "input.image"}},
                "loop_a": {"stage": "invert_mask", "inputs": {"mask": "loop_b.mask"}},
                "loop_b": {"stage": "invert_mask", "inputs": {"mask": "loop_a.mask"}},
                "save": {"stage": "save_imag"},
                "paste": {"stage": "composite", "inputs": {"base": "input.image"}}
              }
            }
            """, to: "bad.json")
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1)
        #expect(!result.crashed)
        let lines = result.errorLines
        let expected = [
            "node 'input' (nodes.input.params.mode): parameter 'mode' \"cmyk\" is not one of",
            "node 'input' (nodes.input.params.path): file not found",
            "node 'fit' (nodes.fit.params.width): parameter 'width' -5 is out of range",
            "node 'fit' (nodes.fit.inputs.image): node 'input' (stage 'load_image') has no output 'picture'",
            "node 'grow' (nodes.grow.inputs.mask): type mismatch",
            "node 'loop_a' (nodes.loop_a.inputs): cycle: loop_a → loop_b → loop_a",
            "node 'save' (nodes.save.stage): unknown stage 'save_imag' (did you mean 'save_image'?)",
            "node 'paste' (nodes.paste.inputs.overlay): required input 'overlay' (image) is not connected",
        ]
        for text in expected {
            #expect(lines.contains { $0.contains(text) }, "missing: \(text)\n\(result.stderr)")
        }
        #expect(lines.count == expected.count, "\(result.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix("error: \(graph): node '") })
        // run refuses the same graph before running anything.
        let run = try CLI.run(["run", graph])
        #expect(run.status == 1)
        #expect(run.errorLines.count == expected.count)
    }

    @Test func validateReportsVersionDuplicatesAndParameterErrorsTogether() throws {
        let temp = try TemporaryFolder()
        let graph = try temp.write("""
            {
              "chisel": 2,
              "nodes": {
                "mask": {"stage": "load_mask", "params": {"threshold": "half"}},
                "mask": {"stage": "invert_mask"},
                "grow": {"stage": "grow_mask", "inputs": {"mask": "mask.mask"}, "params": {"pixel": 3}}
              }
            }
            """, to: "bad.json")
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1)
        let expected = [
            "\(graph): chisel: unsupported format version 2",
            "node 'mask' (nodes.mask.params.threshold): parameter 'threshold' expects a number, got a string",
            "node 'mask' (nodes.mask.params.path): missing required parameter 'path'",
            "node 'mask' (nodes.mask): duplicate node id 'mask' (line 5; first defined on line 4)",
            "node 'grow' (nodes.grow.params.pixel): unknown parameter 'pixel' for stage 'grow_mask' (did you mean 'pixels'?)",
        ]
        for text in expected {
            #expect(result.errorLines.contains { $0.contains(text) }, "missing: \(text)\n\(result.stderr)")
        }
        #expect(result.errorLines.count == expected.count, "\(result.stderr)")
    }

    @Test func invalidJSONIsOneLineWithPosition() throws {
        let temp = try TemporaryFolder()
        let graph = try temp.write("{\n  \"chisel\": 1,\n  \"nodes\": {,}\n}", to: "broken.json")
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1)
        #expect(result.errorLines == ["error: \(graph): invalid JSON at line 3, column 13: expected a quoted key"])
        let missing = try CLI.run(["validate", temp.path("nope.json")])
        #expect(missing.status == 1)
        #expect(missing.errorLines.count == 1)
        #expect(missing.errorLines.first?.contains("nope.json: no such graph file") == true)
    }

    /// Relative paths in the graph resolve against its folder; --set paths against the working directory.
    @Test func setOverridesAndRelativePaths() throws {
        let temp = try TemporaryFolder()
        try writeImage(try patternImage(width: 40, height: 30), to: temp.path("graphs/in.png"))
        try writeImage(try patternImage(width: 20, height: 10, seed: 3), to: temp.path("work/other.png"))
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "in.png"}},
              "half": {"stage": "resize", "inputs": {"image": "input.image"}, "params": {"scale": 0.5}},
              "save": {"stage": "save_image", "inputs": {"image": "half.image"}, "params": {"path": "out/{stem}.png"}}
            }}
            """, to: "graphs/g.json")
        let plain = try CLI.run(["run", graph], in: temp.url)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(try ImageReader.read(path: temp.path("graphs/out/in.png")).image.width == 20)

        let work = temp.url.appendingPathComponent("work")
        let overridden = try CLI.run(["run", graph, "--set", "input.path=other.png", "--set", "half.scale=2",
                                      "--set", "save.path=result/{stem}-x2.png"], in: work)
        #expect(overridden.status == 0, "\(overridden.stderr)")
        let result = try ImageReader.read(path: temp.path("work/result/other-x2.png")).image
        #expect(result.width == 40 && result.height == 20)

        let bad = try CLI.run(["run", graph, "--set", "half.scale=fast"], in: work)
        #expect(bad.status == 1)
        #expect(bad.errorLines.count == 1)
        #expect(bad.errorLines.first?.contains("--set half.scale=fast") == true)
    }

    @Test func neverWritesOverAnInputFile() throws {
        let temp = try TemporaryFolder()
        try writeImage(try patternImage(width: 16, height: 16), to: temp.path("photo.png"))
        let before = try Data(contentsOf: URL(fileURLWithPath: temp.path("photo.png")))
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "photo.png"}},
              "flip": {"stage": "invert_mask", "inputs": {"mask": "m.mask"}},
              "m": {"stage": "image_to_mask", "inputs": {"image": "input.image"}},
              "show": {"stage": "mask_to_image", "inputs": {"mask": "flip.mask"}},
              "save": {"stage": "save_image", "inputs": {"image": "show.image"}, "params": {"path": "{stem}.png"}}
            }}
            """, to: "g.json")
        let result = try CLI.run(["run", graph])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.errorLines.first?.contains("is one of the run's input files") == true, "\(result.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: temp.path("photo.png"))) == before)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: temp.url.path).filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
    }

    @Test func sixteenBitPNGSurvivesLoadAndSaveExactly() throws {
        let temp = try TemporaryFolder()
        let width = 64, height = 8
        var samples = [Float](repeating: 0, count: width * height * 3)
        for i in samples.indices { samples[i] = Float((i * 7919) % 65536) / 65535 }
        try writeImage(try Image(width: width, height: height, layout: .rgb, pixels: samples, bitDepth: 16),
                       to: temp.path("deep.png"), bitDepth: 16)
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "deep.png"}},
              "save": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "copy.png"}}
            }}
            """, to: "g.json")
        let result = try CLI.run(["run", graph])
        #expect(result.status == 0, "\(result.stderr)")
        let original = try ImageReader.read(path: temp.path("deep.png")).image
        let copy = try ImageReader.read(path: temp.path("copy.png")).image
        #expect(copy.bitDepth == 16)
        #expect(original.pixels.map { Int(($0 * 65535).rounded()) } == copy.pixels.map { Int(($0 * 65535).rounded()) })
        #expect(copy.pixels.map { Int(($0 * 65535).rounded()) } == samples.map { Int(($0 * 65535).rounded()) })
    }

    /// A composite through a feathered mask leaves every pixel where the mask is 0 bit-identical.
    @Test func compositeKeepsPixelsOutsideTheMaskBitExact() throws {
        let temp = try TemporaryFolder()
        let width = 96, height = 64
        try writeImage(try patternImage(width: width, height: height, seed: 1), to: temp.path("base.png"))
        try writeImage(try patternImage(width: width / 2, height: height / 2, seed: 9), to: temp.path("edit.png"))
        var maskValues = [Float](repeating: 0, count: width * height)
        for y in 20..<40 { for x in 30..<60 { maskValues[y * width + x] = 1 } }
        try writeImage(try Image(width: width, height: height, layout: .gray, pixels: maskValues), to: temp.path("mask.png"))
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "base": {"stage": "load_image", "params": {"path": "base.png"}},
              "edit": {"stage": "load_image", "params": {"path": "edit.png"}},
              "mask": {"stage": "load_mask", "params": {"path": "mask.png"}},
              "soft": {"stage": "feather_mask", "inputs": {"mask": "mask.mask"}, "params": {"radius": 3}},
              "paste": {"stage": "composite", "inputs": {"base": "base.image", "overlay": "edit.image", "mask": "soft.mask"}},
              "mask_out": {"stage": "mask_to_image", "inputs": {"mask": "soft.mask"}},
              "save": {"stage": "save_image", "inputs": {"image": "paste.image"}, "params": {"path": "out.png"}},
              "save_mask": {"stage": "save_image", "inputs": {"image": "mask_out.image"}, "params": {"path": "soft.png", "bit_depth": "16"}}
            }}
            """, to: "g.json")
        let result = try CLI.run(["run", graph])
        #expect(result.status == 0, "\(result.stderr)")
        let base = try ImageReader.read(path: temp.path("base.png")).image
        let out = try ImageReader.read(path: temp.path("out.png")).image
        let soft = try ImageReader.read(path: temp.path("soft.png")).image
        var outside = 0, changedInside = 0
        for i in 0..<(width * height) {
            if soft.pixels[i] == 0 {
                outside += 1
                for c in 0..<3 { #expect(out.pixels[c * width * height + i] == base.pixels[c * width * height + i]) }
            } else if soft.pixels[i] > 0.9 && (0..<3).contains(where: { out.pixels[$0 * width * height + i] != base.pixels[$0 * width * height + i] }) {
                changedInside += 1
            }
        }
        #expect(outside > width * height / 2)
        #expect(changedInside > 200)
    }
}
