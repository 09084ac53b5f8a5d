import ChiselCore
import ChiselImageIO
import Foundation
import Testing

@Suite struct CLIBatchTests {
    /// 20 images of mixed formats, layouts and sizes, 2 of them corrupt.
    static func makeInputs(in folder: String) throws -> (good: [String], bad: [String]) {
        var good: [String] = []
        let layouts: [PixelLayout] = [.rgb, .rgba, .gray, .grayAlpha]
        for i in 0..<18 {
            let width = 48 + (i * 13) % 70, height = 40 + (i * 29) % 60
            let isJPEG = i % 3 == 0
            let layout = isJPEG ? (i % 2 == 0 ? .rgb : .gray) : layouts[i % layouts.count]
            let name = String(format: "img-%02d.%@", i, isJPEG ? (i % 2 == 0 ? "jpg" : "jpeg") : "png")
            try writeImage(try patternImage(width: width, height: height, layout: layout, seed: i),
                           to: folder + "/" + name, bitDepth: !isJPEG && i % 4 == 1 ? 16 : nil)
            good.append(name)
        }
        let sample = try ImageWriter.encode(try patternImage(width: 50, height: 50), options: ImageEncodeOptions(format: .png))
        try Data(sample.prefix(sample.count / 3)).write(to: URL(fileURLWithPath: folder + "/broken-a.png"))
        try Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 131) }).write(to: URL(fileURLWithPath: folder + "/broken-b.jpg"))
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        return (good, ["broken-a.png", "broken-b.jpg"])
    }

    static func graph(in temp: TemporaryFolder, width: Int = 64, extra: String = "") throws -> String {
        try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "unused.png", "mode": "rgb"}},
              "fit": {"stage": "resize", "inputs": {"image": "input.image"}, "params": {"width": \(width), "height": \(width)}},
              \(extra)
              "save": {"stage": "save_image", "inputs": {"image": "fit.image"}, "params": {"path": "thumbs/{stem}.png"}}
            }}
            """, to: "graph.json")
    }

    static func reportLines(_ path: String) throws -> [JSONValue] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
    }

    static func outputs(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
    }

    @Test func runsEveryImageReportsFailuresAndResumes() throws {
        let temp = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: temp.path("in"), withIntermediateDirectories: true)
        let (good, bad) = try Self.makeInputs(in: temp.path("in"))
        let graph = try Self.graph(in: temp)
        // `input` has a path that does not exist: a batch replaces it, so validation passes.
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out"), "--jobs", "2"])
        #expect(!result.crashed)
        #expect(result.status == 1)
        let expected = good.map { ImageOrigin(path: $0).stem + ".png" }.sorted()
        #expect(Self.outputs(temp.path("out/thumbs")) == expected)
        #expect(result.stderr.contains("20 images: 18 done, 0 skipped (outputs existed), 2 failed"), "\(result.stderr)")
        for name in bad { #expect(result.errorLines.contains { $0.contains(name) }, "\(result.stderr)") }
        #expect(result.errorLines.count == 2)

        let report = try Self.reportLines(temp.path("out/chisel-batch.jsonl"))
        #expect(report.count == 20)
        let failed = report.filter { $0["status"] == "failed" }
        #expect(Set(failed.compactMap { $0["input"]?.stringValue.map { ImageOrigin(path: $0).stem } }) == ["broken-a", "broken-b"])
        #expect(failed.allSatisfy { $0["error"]?.stringValue?.isEmpty == false })
        for line in report where line["status"] == "done" {
            guard case .array(let paths)? = line["outputs"], let path = paths.first?.stringValue else {
                Issue.record("no outputs in \(line.serialized())"); continue
            }
            let image = try ImageReader.read(path: path).image
            #expect(max(image.width, image.height) == 64)
            #expect(image.layout == .rgb)
            #expect(line["seconds"] != nil)
        }

        // A second run skips everything that exists and fails the broken ones again.
        let again = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out")])
        #expect(again.status == 1)
        #expect(again.stderr.contains("20 images: 0 done, 18 skipped (outputs existed), 2 failed"), "\(again.stderr)")
    }

    /// Killed with SIGKILL in the middle and run again, the batch finishes with every output
    /// present once and intact, and no temporary file left behind.
    @Test func resumesAfterSIGKILL() async throws {
        let temp = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: temp.path("in"), withIntermediateDirectories: true)
        let (good, _) = try Self.makeInputs(in: temp.path("in"))
        // Large outputs make each item take long enough to be killed part-way.
        let graph = try Self.graph(in: temp, width: 1200, extra: """
            "blur": {"stage": "feather_mask", "inputs": {"mask": "m.mask"}, "params": {"radius": 6}},
            "m": {"stage": "image_to_mask", "inputs": {"image": "fit.image"}},
            "save_mask": {"stage": "save_image", "inputs": {"image": "mm.image"}, "params": {"path": "masks/{stem}.png"}},
            "mm": {"stage": "mask_to_image", "inputs": {"mask": "blur.mask"}},
            """)
        let arguments = ["batch", graph, "--input", temp.path("in"), "--output", temp.path("out"), "--progress", "none"]
        let running = try CLI.start(arguments)
        let deadline = Date().addingTimeInterval(120)
        let thumbs = temp.path("out/thumbs")
        let process = running.process
        // Watch from a thread of its own: under a loaded test run the shared task threads can be
        // busy long enough for the whole batch to finish between two looks.
        await withCheckedContinuation { (seen: CheckedContinuation<Void, Never>) in
            Thread {
                // Count finished files only, not the hidden temporaries being written.
                while Self.outputs(thumbs).filter({ !$0.hasPrefix(".") }).count < 3 && process.isRunning && Date() < deadline {
                    usleep(5_000)
                }
                kill(process.processIdentifier, SIGKILL)
                seen.resume()
            }.start()
        }
        running.process.waitUntilExit()
        let killed = running.result()
        let partial = Self.outputs(temp.path("out/thumbs")).filter { !$0.hasPrefix(".") }.count
        #expect(partial >= 3 && partial < 18, "kill came at \(partial) outputs: \(killed.stderr)")

        let resumed = try CLI.run(arguments)
        #expect(resumed.status == 1)  // the two corrupt files
        #expect(resumed.stderr.contains("2 failed"), "\(resumed.stderr)")
        let expected = good.map { ImageOrigin(path: $0).stem + ".png" }.sorted()
        #expect(Self.outputs(temp.path("out/thumbs")) == expected)
        #expect(Self.outputs(temp.path("out/masks")) == expected)
        for name in expected {
            let thumb = try ImageReader.read(path: temp.path("out/thumbs/\(name)")).image
            #expect(max(thumb.width, thumb.height) == 1200)
            _ = try ImageReader.read(path: temp.path("out/masks/\(name)"))
        }
        let report = try Self.reportLines(temp.path("out/chisel-batch.jsonl"))
        #expect(report.count == 20)
        #expect(report.filter { $0["status"] == "skipped" }.count >= partial - 1)
    }

    @Test func masksArriveByStemAndAMissingMaskFailsItsItem() throws {
        let temp = try TemporaryFolder()
        for name in ["a", "b", "c"] {
            try writeImage(try patternImage(width: 32, height: 32, seed: name.count), to: temp.path("in/\(name).png"))
        }
        for name in ["a", "b"] {
            var values = [Float](repeating: 0, count: 32 * 32)
            for i in 0..<(name == "a" ? 100 : 500) { values[i] = 1 }
            try writeImage(try Image(width: 32, height: 32, layout: .gray, pixels: values), to: temp.path("masks/\(name).jpg"))
        }
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "photo": {"stage": "load_image", "params": {"path": "x.png"}},
              "reference": {"stage": "load_image", "params": {"path": "\(temp.path("in/c.png"))"}},
              "mask": {"stage": "load_mask", "params": {"path": "x.png", "threshold": 0.5}},
              "paste": {"stage": "composite", "inputs": {"base": "photo.image", "overlay": "reference.image", "mask": "mask.mask"}},
              "show": {"stage": "mask_to_image", "inputs": {"mask": "mask.mask"}},
              "save": {"stage": "save_image", "inputs": {"image": "show.image"}, "params": {"path": "{stem}-mask.png"}}
            }, "batch": {"image": "photo"}}
            """, to: "g.json")
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--masks", temp.path("masks"),
                                  "--output", temp.path("out")])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.errorLines.first?.contains("no mask with the stem 'c'") == true, "\(result.stderr)")
        let a = try ImageReader.read(path: temp.path("out/a-mask.png")).image
        let b = try ImageReader.read(path: temp.path("out/b-mask.png")).image
        #expect(a.pixels.filter { $0 > 0.5 }.count == 100)
        #expect(b.pixels.filter { $0 > 0.5 }.count == 500)
        #expect(!FileManager.default.fileExists(atPath: temp.path("out/c-mask.png")))
    }

    @Test func refusesSavePathsThatCollideAcrossItems() throws {
        let temp = try TemporaryFolder()
        for name in ["a", "b"] { try writeImage(try patternImage(width: 8, height: 8), to: temp.path("in/\(name).png")) }
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "x.png"}},
              "save": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "same.png"}}
            }}
            """, to: "g.json")
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out")])
        #expect(result.status == 1)
        #expect(result.errorLines.count == 1)
        #expect(result.errorLines.first?.contains("would both write") == true, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temp.path("out/same.png")))

        let inPlace = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("in"),
                                   "--set", "save.path={stem}.png"])
        #expect(inPlace.status == 64)
        #expect(inPlace.errorLines.first?.contains("--output is the --input folder") == true, "\(inPlace.stderr)")
        // An --output apart from the inputs, with a save path that leads back to them, is refused as well.
        let back = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out"),
                                "--set", "save.path=../in/{stem}.png", "--allow-outside-output"])
        #expect(back.status == 1)
        #expect(back.stderr.contains("input files") || back.stderr.contains("would write over input file"), "\(back.stderr)")
    }

    @Test func progressJSONWritesEventsToStderr() throws {
        let temp = try TemporaryFolder()
        for name in ["a", "b"] { try writeImage(try patternImage(width: 8, height: 8), to: temp.path("in/\(name).png")) }
        let graph = try Self.graph(in: temp)
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out"),
                                  "--progress", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let events = result.stderr.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
        let kinds = events.compactMap { $0["event"]?.stringValue }
        #expect(kinds.filter { $0 == "item_finished" }.count == 2)
        #expect(kinds.contains("node_started"))
        #expect(kinds.contains("file_written"))
        #expect(events.filter { $0["event"] == "node_finished" }.allSatisfy { $0["item"] != nil && $0["seconds"] != nil })
    }
}
