import ArgumentParser
import ChiselCore
import ChiselModelStages
import ChiselTensor
import Foundation

extension BatchVariations.Seeds: ExpressibleByArgument {}

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch", abstract: "Run a graph once per image of a folder.",
        discussion: """
            The graph's image loader receives each PNG/JPEG file of --input in name order; with \
            --masks, its mask loader receives the mask with the same stem. Relative save paths \
            resolve under --output; use {stem} or {index} in them. Items whose outputs all exist \
            are skipped, so an interrupted batch resumes where it stopped. A bad file fails its \
            item only; the exit status is 1 if any item failed. A JSON-lines report lists every \
            item's status, outputs, time and error.
            """)

    @OptionGroup var graph: GraphArguments
    @OptionGroup var settings: RunSettings

    @Option(help: "Folder of input images.")
    var input: String

    @Option(help: "Folder the outputs go under.")
    var output: String

    @Option(help: "Folder of masks, matched to images by file stem.")
    var masks: String?

    @Option(help: "Images processed at once.")
    var jobs: Int = 1

    @Option(help: "The loader node that receives each image (default: the graph's batch.image, or its only image loader).")
    var imageNode: String?

    @Option(help: "The loader node that receives each mask (default: the graph's batch.mask, or its only mask loader).")
    var maskNode: String?

    @Option(help: "Where to write the JSON-lines report; may use {shard} (default: OUTPUT/chisel-batch.jsonl, with --shard OUTPUT/chisel-batch-{shard}.jsonl).")
    var report: String?

    @Option(help: ArgumentHelp(
        "Edit only shard I of N of the items (0 ≤ I < N), or auto: the SLURM array task's or Kubernetes Indexed Job's.",
        discussion: "Items are assigned by a hash of their path relative to --input, so each belongs to one shard on every "
            + "machine and re-run; shards may share --output. See docs/cluster.md.",
        valueName: "I/N|auto"))
    var shard: String?

    @Option(help: "With --shard auto: how many shards (a Kubernetes Indexed Job's completions; SLURM arrays tell it).")
    var shardCount: Int?

    @Flag(help: "Run items even when their outputs exist.")
    var overwrite = false

    @Flag(help: "Let save paths leave --output (absolute paths, '..'); without it they are refused.")
    var allowOutsideOutput = false

    @Option(help: ArgumentHelp("Take each image's prompt from <stem>.txt beside it, into this node's prompt (or NODE.PARAM).",
                               valueName: "node[.param]"))
    var promptFromTxt: String?

    @Option(help: "Seeds per item: increment (each explicit seed plus the item's index) or fixed.")
    var seedMode: BatchVariations.Seeds = .increment

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        if let shardCount, shardCount < 1 { throw ValidationError("--shard-count must be at least 1") }
        if shardCount != nil, shard != "auto" { throw ValidationError("--shard-count goes with --shard auto") }
        _ = try chosenShard()
        if let promptFromTxt, promptFromTxt.isEmpty || promptFromTxt.hasPrefix(".") || promptFromTxt.hasSuffix(".") {
            throw ValidationError("--prompt-from-txt takes NODE or NODE.PARAM")
        }
    }

    /// The shard this process edits: --shard I/N, or auto from the engine's environment.
    func chosenShard() throws -> BatchShard {
        do {
            switch shard {
            case nil: return .all
            case "auto"?: return try BatchShard.fromEnvironment(ProcessInfo.processInfo.environment, count: shardCount)
            case let text?: return try BatchShard(parsing: text)
            }
        } catch let error as ShardError {
            throw ValidationError("--shard \(shard ?? ""): \(error.description)")
        }
    }

    func run() async throws {
        let shard = try chosenShard()
        let cwd = PathResolver.workingDirectory
        let outputRoot = cwd.resolve(output)
        let registry = try ChiselCLI.makeRegistry()
        let inputFolder = cwd.resolve(input)
        for (option, folder) in [("--input", inputFolder), ("--output", outputRoot)] + (masks.map { [("--masks", cwd.resolve($0))] } ?? []) {
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder)
            if exists, !isFolder.boolValue { throw ValidationError("\(option) \(folder) is a file; give a folder") }
            if !exists, option != "--output" { throw ValidationError("\(option) \(folder): no such folder") }
        }
        if FileLedger.canonical(inputFolder) == FileLedger.canonical(outputRoot) {
            throw ValidationError("--output is the --input folder: the outputs would be read as inputs by the next run; "
                                  + "give another --output folder")
        }
        let binding = BatchBinding(imageNode: imageNode, maskNode: maskNode, withMasks: masks != nil,
                                   outputRoot: outputRoot, allowOutsideOutput: allowOutsideOutput)
        let plan = try graph.compile(registry: registry, batch: binding)
        RunCommand.announce(plan)
        let all = try BatchItem.list(folder: inputFolder, masks: masks.map(cwd.resolve))
        if all.isEmpty {
            throw ChiselError(.io, "no PNG or JPEG files in the input folder", file: input)
        }
        // Indices (and so seeds) come from the whole folder, whatever the sharding.
        let items = all.filter { shard.owns(relativePath: $0.relativePath) }
        do {
            try FileManager.default.createDirectory(atPath: outputRoot, withIntermediateDirectories: true)
        } catch {
            throw ChiselError(.io, "cannot create the output folder: \(String(cString: strerror(errno)))", file: outputRoot)
        }
        // One process per shard and output folder: a second would redo the same items and overwrite
        // the report. Shards of one job share the folder and need no lock between them.
        let lock = try FolderLock(folder: outputRoot, name: shard == .all ? FolderLock.fileName : ".chisel-batch-\(shard.label).lock")
        defer { withExtendedLifetime(lock) {} }
        let reportTemplate = report ?? (shard == .all ? "chisel-batch.jsonl" : "chisel-batch-{shard}.jsonl")
        let reportPath = (report == nil ? PathResolver(base: outputRoot) : cwd)
            .resolve(reportTemplate.replacingOccurrences(of: "{shard}", with: shard.label))
        // A shard's report keeps every attempt (a requeued task appends), so `chisel report` sees its whole history.
        let reportFile = try ReportFile(path: reportPath, append: shard != .all)
        if shard != .all {
            Terminal.err("shard \(shard): \(items.count) of the \(all.count) images")
        }
        Terminal.err("kernel threads: \(CPUBudget.summary)")
        let progress = ProgressRenderer(mode: settings.progress, total: items.count, unit: "images")
        var textParam: (node: String, param: String)?
        if let promptFromTxt {
            let parts = promptFromTxt.split(separator: ".", maxSplits: 1).map(String.init)
            textParam = (parts[0], parts.count > 1 ? parts[1] : EncodePromptStage.prompt.name)
        }
        let variations = BatchVariations(textParam: textParam, seeds: seedMode)
        do {
            try variations.check(plan)
        } catch let error as ChiselError {
            throw ChiselError(error.code, "--prompt-from-txt \(error.message)", file: error.file)
        }
        let runner = BatchRunner(plan: plan, registry: registry, jobs: jobs, maxPixels: settings.maxPixels,
                                 overwrite: overwrite, variations: variations, events: { progress.handle($0) })
        let summary = try await runner.run(items, of: shard == .all ? nil : all, report: { reportFile.append($0.json) })
        progress.finish()
        let reportFailure = reportFile.close()
        Terminal.err("\(summary.total) images: \(summary.done) done, \(summary.skipped) skipped "
                     + "(outputs existed), \(summary.failed) failed in \(ProgressRenderer.clock(summary.seconds))"
                     + (reportFailure == nil ? "; report: \(reportPath)" : ""))
        if let reportFailure {
            throw ChiselError(.io, "cannot write the batch report: \(reportFailure)"
                              + "; the outputs were written, and a re-run skips the items that are done", file: reportPath)
        }
        if summary.failed > 0 { throw ExitCode.failure }
    }
}

/// The batch report: one JSON object per line, flushed as each item ends, so an interrupted
/// batch leaves a report of what it finished.
final class ReportFile: @unchecked Sendable {
    private let handle: FileHandle
    private let path: String
    private let lock = NSLock()
    private var failure: String?
    private var written = 0

    /// A new report at `path`, or with `append` the existing one continued.
    init(path: String, append: Bool = false) throws {
        self.path = path
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let reason = OutputPolicy.unwritable(path) { throw ChiselError(.io, "cannot write the batch report: \(reason)", file: path) }
        let exists = FileManager.default.fileExists(atPath: path)
        guard append && exists || FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw ChiselError(.io, "cannot write the batch report: \(String(cString: strerror(errno)))", file: path)
        }
        if append {
            _ = try? handle.seekToEnd()
            // A line a killed attempt left half-written ends here, so the next one starts on its own.
            if let size = try? handle.offset(), size > 0,
                let last = try? FileHandle(forReadingAtPath: path).map({ reader -> Data in
                    try reader.seek(toOffset: size - 1)
                    return reader.readData(ofLength: 1)
                }), last != Data("\n".utf8)
            {
                try? handle.write(contentsOf: Data("\n".utf8))
            }
        }
        self.handle = handle
        self.keep = append && exists
    }

    /// Whether the file held lines before this run (an appended report is never removed).
    private let keep: Bool

    func append(_ json: JSONValue) {
        lock.lock()
        defer { lock.unlock() }
        guard failure == nil else { return }
        do {
            try handle.write(contentsOf: Data((json.serialized() + "\n").utf8))
            written += 1
        } catch {
            failure = Self.reason(error)
        }
    }

    /// The system's words for a write error (errno's), not Foundation's error domain and code.
    static func reason(_ error: any Error) -> String {
        var current: NSError? = error as NSError
        while let ns = current {
            if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
            if ns.domain == NSCocoaErrorDomain, ns.code == NSFileWriteOutOfSpaceError { return String(cString: strerror(ENOSPC)) }
            current = ns.userInfo[NSUnderlyingErrorKey] as? NSError
        }
        return (error as NSError).localizedDescription
    }

    /// Flushes and closes the report; the reason it could not be written, if it could not. A
    /// report that holds nothing is removed rather than left empty.
    func close() -> String? {
        lock.lock()
        defer { lock.unlock() }
        if failure == nil {
            do { try handle.synchronize() } catch { failure = String(cString: strerror(errno)) }
        }
        try? handle.close()
        if failure != nil, written == 0, !keep { unlink(path) }
        return failure
    }
}
