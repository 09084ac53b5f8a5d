import ArgumentParser
import ChiselCore
import ChiselModelStages
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

    @Option(help: "Where to write the JSON-lines report (default: OUTPUT/chisel-batch.jsonl).")
    var report: String?

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
        if let promptFromTxt, promptFromTxt.isEmpty || promptFromTxt.hasPrefix(".") || promptFromTxt.hasSuffix(".") {
            throw ValidationError("--prompt-from-txt takes NODE or NODE.PARAM")
        }
    }

    func run() async throws {
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
        let items = try BatchItem.list(folder: inputFolder,
                                       masks: masks.map(cwd.resolve))
        if items.isEmpty {
            throw ChiselError(.io, "no PNG or JPEG files in the input folder", file: input)
        }
        do {
            try FileManager.default.createDirectory(atPath: outputRoot, withIntermediateDirectories: true)
        } catch {
            throw ChiselError(.io, "cannot create the output folder: \(String(cString: strerror(errno)))", file: outputRoot)
        }
        // One batch at a time per output folder: a second would redo the same items and overwrite the report.
        let lock = try FolderLock(folder: outputRoot)
        defer { withExtendedLifetime(lock) {} }
        let reportPath = (report == nil ? PathResolver(base: outputRoot) : cwd).resolve(report ?? "chisel-batch.jsonl")
        let reportFile = try ReportFile(path: reportPath)
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
        let summary = try await runner.run(items, report: { reportFile.append($0.json) })
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

    init(path: String) throws {
        self.path = path
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let reason = OutputPolicy.unwritable(path) { throw ChiselError(.io, "cannot write the batch report: \(reason)", file: path) }
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else {
            throw ChiselError(.io, "cannot write the batch report: \(String(cString: strerror(errno)))", file: path)
        }
        self.handle = handle
    }

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
        if failure != nil, written == 0 { unlink(path) }
        return failure
    }
}
