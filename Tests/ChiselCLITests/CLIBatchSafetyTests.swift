import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// Batches kept to their folders, failures that used to be silent or raw, and one batch at a
/// time per output folder.
@Suite struct CLIBatchSafetyTests {
    /// A folder of two small images and a graph that writes a thumbnail of each with `savePath`.
    static func batchSetup(_ temp: TemporaryFolder, savePath: String = "{stem}-t.png") throws -> String {
        try FileManager.default.createDirectory(atPath: temp.path("in"), withIntermediateDirectories: true)
        for (i, name) in ["a", "b"].enumerated() {
            try writeImage(try patternImage(width: 24, height: 16, seed: i), to: temp.path("in/\(name).png"))
        }
        return try temp.write("""
            {"chisel": 1, "nodes": {
              "input": {"stage": "load_image", "params": {"path": "in/a.png"}},
              "small": {"stage": "resize", "inputs": {"image": "input.image"}, "params": {"width": 8}},
              "save": {"stage": "save_image", "inputs": {"image": "small.image"}, "params": {"path": "\(savePath)"}}}}
            """, to: "thumbs.json")
    }

    // MARK: 9. Batch paths

    @Test(arguments: ["../escaped-{stem}.png", "/tmp/chisel-escaped-{stem}.png", "~/chisel-escaped-{stem}.png"])
    func batchSavePathsOutsideTheOutputFolderAreRefusedUnlessAllowed(savePath: String) throws {
        let temp = try TemporaryFolder()
        let graph = try Self.batchSetup(temp, savePath: savePath)
        let validation = try CLI.run(["validate", graph, "--batch"], in: temp.url)
        #expect(validation.status == 1)
        #expect(validation.stderr.contains("--allow-outside-output"), "\(validation.stderr)")
        let out = temp.url.appendingPathComponent("deep/out")
        let batch = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", out.path])
        #expect(batch.status == 1, "\(batch.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temp.path("deep/escaped-a.png")))
        if savePath.hasPrefix("..") {
            let allowed = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", out.path, "--allow-outside-output"])
            #expect(allowed.status == 0, "\(allowed.stderr)")
            #expect(FileManager.default.fileExists(atPath: temp.path("deep/escaped-a.png")))
        }
    }

    @Test func anInputFolderUsedAsTheOutputFolderIsRefusedAtTheStart() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.batchSetup(temp)
        let same = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("in/")])
        #expect(same.status == 64)
        #expect(same.stderr.contains("--output is the --input folder"), "\(same.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temp.path("in")).sorted() == ["a.png", "b.png"])
        let file = try temp.write("x", to: "a-file")
        let named = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", file])
        #expect(named.status == 64 && named.stderr.contains("is a file; give a folder"), "\(named.stderr)")
        #expect(!named.stderr.contains("NSCocoaErrorDomain"))
    }

    @Test func twoInputsSharingAStemAreNamedInTheCollision() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.batchSetup(temp)
        try writeImage(try patternImage(width: 24, height: 16, seed: 5), to: temp.path("in/a.jpg"))
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("share the stem 'a'") && result.stderr.contains("{index}"), "\(result.stderr)")
    }

    // MARK: 10. Silent failures

    @Test func aGraphThatWritesNothingIsNoBatch() throws {
        let temp = try TemporaryFolder()
        _ = try Self.batchSetup(temp)
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {"input": {"stage": "load_image", "params": {"path": "in/a.png"}},
              "small": {"stage": "resize", "inputs": {"image": "input.image"}, "params": {"width": 8}}}}
            """, to: "nothing.json")
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("writes no file"), "\(result.stderr)")
    }

    @Test func duplicateKeysInAnObjectAreReported() throws {
        let temp = try TemporaryFolder()
        _ = try Self.batchSetup(temp)
        let graph = try temp.write("""
            {"chisel": 1, "nodes": {"input": {"stage": "load_image", "params": {"path": "in/a.png", "path": "in/b.png"}},
              "save": {"stage": "save_image", "inputs": {"image": "input.image"}, "params": {"path": "x.png"}}}}
            """, to: "dup.json")
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1)
        #expect(result.stderr.contains("duplicate key \"path\" (line 1"), "\(result.stderr)")
        #expect(result.stderr.contains("nodes.input.params.path"))
    }

    @Test func aMissingPromptFileIsSaidForItsItem() throws {
        let temp = try TemporaryFolder()
        try FileManager.default.createDirectory(atPath: temp.path("in"), withIntermediateDirectories: true)
        for (i, name) in ["a", "b"].enumerated() {
            try writeImage(try patternImage(width: 32, height: 32, seed: i), to: temp.path("in/\(name).png"))
        }
        try "a harbor at dawn".write(toFile: temp.path("in/b.txt"), atomically: true, encoding: .utf8)
        let graph = CLI.repository.appendingPathComponent("samples/editing/sdedit.json").path
        let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out"), "--var", "width=32",
                                  "--var", "model=\(model)", "--set", "noised.steps=2", "--set", "save.path={stem}.png",
                                  "--prompt-from-txt", "text"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("no a.txt beside a.png: its prompt is the graph's"), "\(result.stderr)")
        #expect(!result.stderr.contains("b.txt beside"))
    }

    /// Mounting a small file system needs root (CI runs as root); elsewhere the test is reported as skipped.
    @Test(.enabled(if: getuid() == 0, "mounting a 16 KiB tmpfs needs root"))
    func aReportOnAFullDiskIsAnErrorAndNotAnEmptyFile() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.batchSetup(temp)
        let full = temp.path("full")
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=16k", "tmpfs", full]
        try mount.run()
        mount.waitUntilExit()
        guard mount.terminationStatus == 0 else {
            Issue.record("could not mount a tmpfs as root at \(full); the full-disk case went untested")
            return
        }
        defer {
            let umount = Process()
            umount.executableURL = URL(fileURLWithPath: "/bin/umount")
            umount.arguments = [full]
            try? umount.run()
            umount.waitUntilExit()
        }
        // Fill it: the writes stop with ENOSPC.
        if let handle = FileHandle(forWritingAtPath: full + "/filler") ?? {
            guard FileManager.default.createFile(atPath: full + "/filler", contents: nil) else { return nil }
            return FileHandle(forWritingAtPath: full + "/filler")
        }() {
            for _ in 0..<64 { if (try? handle.write(contentsOf: Data(count: 1024))) == nil { break } }
            try? handle.close()
        }
        let report = full + "/report.jsonl"
        let result = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", temp.path("out"), "--report", report])
        #expect(result.status == 1)
        #expect(result.stderr.contains("cannot write the batch report: No space left on device"), "\(result.stderr)")
        #expect(!result.stderr.contains("report: \(report)"))
        #expect(!FileManager.default.fileExists(atPath: report), "no empty report is left")
        #expect(FileManager.default.fileExists(atPath: temp.path("out/a-t.png")))
    }

    // MARK: 11. Messages

    @Test func messagesNameTheThingAndNeverDriveTheTerminal() throws {
        let temp = try TemporaryFolder()
        let folder = try CLI.run(["validate", temp.url.path])
        #expect(folder.status == 1 && folder.stderr.contains("is a folder, not a graph file"), "\(folder.stderr)")
        #expect(!folder.stderr.contains("error 256") && !folder.stderr.contains("Code=512"))

        let graph = try temp.write("{\"chisel\": 1, \"nodes\": {\"bad\\u0000\\u001b[31mid\": {\"stage\": \"load_image\"}}}", to: "nul.json")
        let nul = try CLI.run(["validate", graph])
        #expect(nul.status == 1)
        #expect(!nul.stderr.contains("\u{0}") && !nul.stderr.contains("\u{1B}"), "control characters are escaped")
        #expect(nul.stderr.contains("\\u{0}") && nul.stderr.contains("\\u{1B}"), "\(nul.stderr)")

        let noParams = try temp.write("""
            {"chisel": 1, "nodes": {"m": {"stage": "invert_mask", "params": {"radius": 2}}}}
            """, to: "noparams.json")
        let message = try CLI.run(["validate", noParams])
        #expect(message.stderr.contains("it takes no parameters"), "\(message.stderr)")
    }

    // MARK: 12. One batch per output folder

    @Test func aSecondBatchOnTheSameOutputFolderRefusesToStart() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.batchSetup(temp)
        let out = temp.path("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        do {
            let held = try FolderLock(folder: out)
            let second = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", out])
            #expect(second.status == 1)
            #expect(second.stderr.contains("another chisel batch (process \(getpid())) is working in"), "\(second.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out + "/a-t.png"))
            withExtendedLifetime(held) {}
        }
        // Released (as a killed holder's lock is by the kernel): the next batch takes it.
        let after = try CLI.run(["batch", graph, "--input", temp.path("in"), "--output", out])
        #expect(after.status == 0, "\(after.stderr)")
    }
}
