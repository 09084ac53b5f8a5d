import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// `chisel batch --shard` and `chisel report`: a batch spread over processes that share one
/// output folder, and the account that says whether the whole job finished.
@Suite struct CLIShardTests {
    /// `count` small PNGs named img-00.png….
    static func makeInputs(_ count: Int, in folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for i in 0..<count {
            try writeImage(try patternImage(width: 24 + i % 7, height: 20 + i % 5, seed: i), to: folder + String(format: "/img-%02d.png", i))
        }
    }

    static func batch(_ graph: String, _ input: String, _ output: String, _ extra: [String] = [],
                      environment: [String: String] = [:]) throws -> CLIResult {
        try CLI.run(["batch", graph, "--input", input, "--output", output, "--progress", "none"] + extra, environment: environment)
    }

    static func outputs(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/thumbs")) ?? []).sorted()
    }

    @Test func threeShardsEditEveryImageOnceAndTheReportSaysSo() throws {
        let temp = try TemporaryFolder()
        let (input, output) = (temp.path("in"), temp.path("out"))
        try Self.makeInputs(30, in: input)
        let graph = try CLIBatchTests.graph(in: temp)
        var counts: [Int] = []
        for i in 0..<3 {
            let result = try Self.batch(graph, input, output, ["--shard", "\(i)/3"])
            #expect(result.status == 0, "\(result.stderr)")
            counts.append(try CLIBatchTests.reportLines(output + "/chisel-batch-\(i)-of-3.jsonl").count)
        }
        #expect(counts.reduce(0, +) == 30, "\(counts)")
        #expect(counts.allSatisfy { $0 > 0 }, "\(counts)")
        #expect(Self.outputs(output).count == 30)
        #expect(!Self.outputs(output).contains { $0.hasSuffix(".chisel-tmp") })
        let reports = (0..<3).map { output + "/chisel-batch-\($0)-of-3.jsonl" }
        let merged = try CLI.run(["report"] + reports + ["--input", input])
        #expect(merged.status == 0, "\(merged.stdout)\(merged.stderr)")
        #expect(merged.stdout.hasPrefix("30 items: 30 done, 0 skipped (outputs existed), 0 failed, 0 missing"), "\(merged.stdout)")
        let json = try JSONParser.parse(try CLI.run(["report", "--json"] + reports).stdout)
        #expect(json["done"] == .int(30) && json["items"] == .int(30))

        // One report left out: the items only it covered are missing, by name.
        let partial = try CLI.run(["report"] + reports.dropLast() + ["--input", input])
        #expect(partial.status == 1)
        #expect(partial.stdout.contains(", \(counts[2]) missing"), "\(partial.stdout)")
        let missing = partial.stdout.split(separator: "\n").filter { $0.hasPrefix("missing: ") }
        #expect(missing.count == counts[2])
        let lastShard = try CLIBatchTests.reportLines(reports[2]).compactMap { $0["input"]?.stringValue }
        #expect(Set(missing.map { String($0.dropFirst("missing: ".count)) }) == Set(lastShard))
    }

    /// The same image belongs to the same shard whatever else is in the folder, and a sharded
    /// run gives the images an unsharded one gives (seeds follow the item's index in the folder).
    @Test func assignmentIsStableAndShardingChangesNoImage() throws {
        let temp = try TemporaryFolder()
        let input = temp.path("in")
        try Self.makeInputs(12, in: input)
        let graph = try CLIBatchTests.graph(in: temp)
        func shardOf(_ folder: String) throws -> [String: Int] {
            var owner: [String: Int] = [:]
            for i in 0..<4 {
                let out = temp.path("\(folder)-\(i)")
                #expect(try Self.batch(graph, input, out, ["--shard", "\(i)/4"]).status == 0)
                for name in Self.outputs(out) { owner[name] = i }
            }
            return owner
        }
        let before = try shardOf("a")
        try Self.makeInputs(20, in: input)  // 8 more images
        let after = try shardOf("b")
        #expect(before.count == 12 && after.count == 20)
        for (name, shard) in before { #expect(after[name] == shard, "\(name) moved from shard \(shard)") }

        let whole = temp.path("whole")
        #expect(try Self.batch(graph, input, whole).status == 0)
        for name in Self.outputs(whole) {
            let shard = try #require(after[name])
            let a = try ImageReader.read(path: whole + "/thumbs/" + name).image
            let b = try ImageReader.read(path: temp.path("b-\(shard)") + "/thumbs/" + name).image
            #expect(a.pixels == b.pixels, "\(name)")
        }
    }

    @Test(arguments: [
        (["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"], [String](), "2/3"),
        (["SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_MAX": "12"], [], "2/3"),
        (["SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "3"], [], "2/3"),
        (["JOB_COMPLETION_INDEX": "1"], ["--shard-count", "3"], "1/3"),
        (["JOB_COMPLETION_INDEX": "1", "CHISEL_SHARD_COUNT": "3"], [], "1/3"),
    ])
    func autoTakesTheEnginesShard(environment: [String: String], extra: [String], explicit: String) throws {
        let temp = try TemporaryFolder()
        let input = temp.path("in")
        try Self.makeInputs(15, in: input)
        let graph = try CLIBatchTests.graph(in: temp)
        let auto = try Self.batch(graph, input, temp.path("auto"), ["--shard", "auto"] + extra, environment: environment)
        #expect(auto.status == 0, "\(auto.stderr)")
        #expect(auto.stderr.contains("shard \(explicit):"), "\(auto.stderr)")
        #expect(try Self.batch(graph, input, temp.path("explicit"), ["--shard", explicit]).status == 0)
        #expect(Self.outputs(temp.path("auto")) == Self.outputs(temp.path("explicit")))
        #expect(!Self.outputs(temp.path("auto")).isEmpty)
    }

    @Test(arguments: [
        (["--shard", "3/3"], [String: String](), "out of range"),
        (["--shard=-1/3"], [:], "out of range"),
        (["--shard", "1"], [:], "give I/N"),
        (["--shard", "a/b"], [:], "give I/N"),
        (["--shard", "0/0"], [:], "at least 1"),
        (["--shard", "auto"], [:], "found no shard in the environment"),
        (["--shard", "auto"], ["JOB_COMPLETION_INDEX": "0"], "give --shard-count"),
        (["--shard", "auto"], ["SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "2"], "not an integer"),
        (["--shard", "auto"], ["SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_STEP": "2",
                               "SLURM_ARRAY_TASK_COUNT": "3"], "not on the array's step"),
        (["--shard", "1/2", "--shard-count", "2"], [:], "--shard-count goes with --shard auto"),
    ])
    func badShardsAreUsageErrors(extra: [String], environment: [String: String], message: String) throws {
        let temp = try TemporaryFolder()
        let result = try Self.batch("g.json", temp.path("in"), temp.path("out"), extra, environment: environment)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.errorLines.count == 1 && result.stderr.contains(message), "\(result.stderr)")
    }

    /// A shard re-run after being killed skips what it finished; its report keeps both attempts,
    /// and the merged account counts each item once. Another shard's temporary is left alone.
    @Test func aRerunShardSkipsItsDoneItemsAndLeavesOtherShardsTemporaries() throws {
        let temp = try TemporaryFolder()
        let (input, output) = (temp.path("in"), temp.path("out"))
        try Self.makeInputs(10, in: input)
        let graph = try CLIBatchTests.graph(in: temp)
        #expect(try Self.batch(graph, input, output, ["--shard", "0/2"]).status == 0)
        let first = try CLIBatchTests.reportLines(output + "/chisel-batch-0-of-2.jsonl").count
        // What a killed writer of shard 1 leaves: a temporary beside one of shard 1's outputs.
        try FileManager.default.createDirectory(atPath: output + "/thumbs", withIntermediateDirectories: true)
        let foreign = output + "/thumbs/.img-99.png.123-1.chisel-tmp"
        #expect(FileManager.default.createFile(atPath: foreign, contents: Data([1, 2, 3])))
        // …and one a killed writer of shard 0 left beside one of its own outputs.
        let ownOutput = try #require(try CLIBatchTests.reportLines(output + "/chisel-batch-0-of-2.jsonl").first?["outputs"].flatMap { if case .array(let items) = $0 { items.first?.stringValue } else { nil } })
        let own = (ownOutput as NSString).deletingLastPathComponent + "/." + (ownOutput as NSString).lastPathComponent + ".123-1.chisel-tmp"
        #expect(FileManager.default.createFile(atPath: own, contents: Data([1, 2, 3])))
        // A half-written last line, as a killed attempt could leave.
        let handle = try #require(FileHandle(forWritingAtPath: output + "/chisel-batch-0-of-2.jsonl"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"index": 3, "inp"#.utf8))
        try handle.close()
        let again = try Self.batch(graph, input, output, ["--shard", "0/2"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(FileManager.default.fileExists(atPath: foreign), "shard 0 removed a temporary that is not its own")
        #expect(!FileManager.default.fileExists(atPath: own), "shard 0 left its own stale temporary")
        let report = try String(contentsOfFile: output + "/chisel-batch-0-of-2.jsonl", encoding: .utf8)
        let lines = report.split(separator: "\n")
        #expect(lines.count == 2 * first + 1)
        #expect(lines.suffix(first).allSatisfy { $0.contains("\"skipped\"") })
        let merged = try CLI.run(["report", output + "/chisel-batch-0-of-2.jsonl", "--json"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let json = try JSONParser.parse(merged.stdout)
        #expect(json["done"] == .int(first) && json["skipped"] == .int(0), "\(merged.stdout)")
        #expect(merged.stderr.contains("not a batch report line"))
    }

    @Test func reportNamesFailuresAndRefusesMissingFiles() throws {
        let temp = try TemporaryFolder()
        let report = try temp.write("""
            {"index": 0, "input": "/x/a.png", "status": "done", "outputs": ["/o/a.png"], "seconds": 2.0}
            {"index": 1, "input": "/x/b.png", "status": "failed", "outputs": [], "seconds": 0.1, "error": "error: /x/b.png: truncated PNG"}
            """, to: "r.jsonl")
        let result = try CLI.run(["report", report])
        #expect(result.status == 1)
        #expect(result.stdout.contains("2 items: 1 done, 0 skipped (outputs existed), 1 failed"), "\(result.stdout)")
        #expect(result.stdout.contains("failed: /x/b.png: error: /x/b.png: truncated PNG"))
        let absent = try CLI.run(["report", temp.path("nope.jsonl")])
        #expect(absent.status == 1 && absent.stderr.contains("no such report"), "\(absent.stderr)")
    }
}

/// The kernel thread count a process uses, as `chisel bench --json` reports it.
@Suite struct CLIThreadTests {
    static func threads(_ arguments: [String], prefix: [String] = [], environment: [String: String] = [:]) throws
        -> (chisel: Int, openMP: Int, reason: String)
    {
        let bench = ["bench", "--json", "--part", "kernels", "--size", "64", "--repeats", "1", "--precision", "f32"]
        let result: CLIResult
        if prefix.isEmpty {
            result = try CLI.run(bench + arguments, environment: environment)
        } else {
            // Through another program (taskset): the built binary as its argument.
            result = try CLI.run(Array(prefix.dropFirst()) + [CLI.executable.path] + bench + arguments,
                                 executable: URL(fileURLWithPath: prefix[0]), environment: environment)
        }
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONParser.parse(result.stdout)
        guard case .int(let chisel)? = json["threads"], case .int(let openMP)? = json["openmp_threads"],
              let reason = json["threads_reason"]?.stringValue else {
            throw ChiselError(.internal, "bench --json has no thread counts: \(result.stdout)")
        }
        return (chisel, openMP, reason)
    }

    @Test func oneAllowedCPUIsOneThread() throws {
        let taskset = "/usr/bin/taskset"
        guard FileManager.default.isExecutableFile(atPath: taskset) else {
            Issue.record("taskset (util-linux) is not installed")
            return
        }
        let pinned = try Self.threads([], prefix: [taskset, "-c", "0"])
        #expect(pinned.chisel == 1 && pinned.openMP == 1, "\(pinned)")
    }

    @Test func threadsOptionAndVariableSetTheCount() throws {
        let option = try Self.threads(["--threads", "1"])
        #expect(option.chisel == 1 && option.openMP == 1 && option.reason == "CHISEL_THREADS", "\(option)")
        let variable = try Self.threads([], environment: ["CHISEL_THREADS": "1"])
        #expect(variable.chisel == 1 && variable.openMP == 1, "\(variable)")
        let bad = try CLI.run(["bench", "--part", "kernels"], environment: ["CHISEL_THREADS": "none"])
        #expect(bad.status == 64 && bad.stderr.contains("CHISEL_THREADS='none'"), "\(bad.stderr)")
    }
}
