import ArgumentParser
import ChiselCore
import Foundation

/// `chisel report`: merges the JSON-lines reports of a batch's shards (or of one batch) into
/// one account of the job: what is done, what failed and why, and with --input what no report
/// covers. Exit 0 only when every item is done.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Merge batch reports: items done, skipped, failed and missing.",
        discussion: """
            Reads the reports `chisel batch` writes (one per shard with --shard), in the order given; \
            an item reported more than once takes its last line, except that a later 'skipped' (its \
            outputs existed) does not hide an earlier 'done'. With --input, the folder's images that \
            no report covers are missing. Exit status 0 when every item is done or skipped, 1 when \
            any failed or is missing.
            """)

    @Argument(help: "Batch reports (JSON lines), e.g. OUTPUT/chisel-batch-*.jsonl.")
    var reports: [String]

    @Option(help: "The batch's input folder: its images that no report covers are listed as missing.")
    var input: String?

    @Flag(help: "Print the account as one JSON object.")
    var json = false

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("give at least one report file") }
    }

    struct Entry {
        var status: BatchItemReport.Status
        var seconds: Double
        var error: String?
    }

    func run() throws {
        let cwd = PathResolver.workingDirectory
        var entries: [String: Entry] = [:]
        var order: [String] = []
        for report in reports.map(cwd.resolve) {
            guard let data = FileManager.default.contents(atPath: report) else {
                throw ChiselError(.io, FileManager.default.fileExists(atPath: report) ? "cannot read the report" : "no such report",
                                  file: report)
            }
            for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                guard let entry = try? JSONParser.parse(String(line)), let input = entry["input"]?.stringValue,
                    let status = entry["status"]?.stringValue.flatMap(BatchItemReport.Status.init(rawValue:))
                else {
                    Terminal.err("warning: \(report):\(number + 1): not a batch report line; ignored")
                    continue
                }
                let seconds: Double = switch entry["seconds"] {
                case .double(let d)?: d
                case .int(let i)?: Double(i)
                default: 0
                }
                let key = FileLedger.canonical(input)
                if entries[key] == nil { order.append(key) }
                if let earlier = entries[key], earlier.status == .done, status == .skipped { continue }
                entries[key] = Entry(status: status, seconds: seconds, error: entry["error"]?.stringValue)
            }
        }
        var missing: [String] = []
        if let input {
            let folder = cwd.resolve(input)
            missing = try BatchItem.list(folder: folder).map(\.image).filter { entries[FileLedger.canonical($0)] == nil }
        }
        let count = { (status: BatchItemReport.Status) in entries.values.filter { $0.status == status }.count }
        let (done, skipped, failed) = (count(.done), count(.skipped), count(.failed))
        let timed = entries.values.filter { $0.status == .done }.map(\.seconds)
        let mean = timed.isEmpty ? 0 : timed.reduce(0, +) / Double(timed.count)
        let failures = order.compactMap { key in entries[key].flatMap { $0.status == .failed ? (key, $0.error ?? "") : nil } }
        if json {
            Terminal.out(JSONValue.object([
                JSONMember(key: "items", value: .int(entries.count + missing.count)),
                JSONMember(key: "done", value: .int(done)),
                JSONMember(key: "skipped", value: .int(skipped)),
                JSONMember(key: "failed", value: .int(failed)),
                JSONMember(key: "missing", value: .int(missing.count)),
                JSONMember(key: "seconds_per_item", value: .double((mean * 1000).rounded() / 1000)),
                JSONMember(key: "seconds_total", value: .double((timed.reduce(0, +) * 1000).rounded() / 1000)),
                JSONMember(key: "failures", value: .array(failures.map {
                    .object([JSONMember(key: "input", value: .string($0.0)), JSONMember(key: "error", value: .string($0.1))])
                })),
                JSONMember(key: "missing_inputs", value: .array(missing.map(JSONValue.string))),
            ]).serialized())
        } else {
            Terminal.out("\(entries.count + missing.count) items: \(done) done, \(skipped) skipped (outputs existed), "
                         + "\(failed) failed" + (input == nil ? "" : ", \(missing.count) missing"))
            if !timed.isEmpty {
                Terminal.out(String(format: "%.2f s per item done (%d items, %.1f s in all)", mean, timed.count, timed.reduce(0, +)))
            }
            for (path, error) in failures { Terminal.out("failed: \(path): \(error)") }
            for path in missing { Terminal.out("missing: \(path)") }
        }
        if entries.isEmpty && missing.isEmpty {
            throw ChiselError(.io, "the reports hold no items")
        }
        if failed > 0 || !missing.isEmpty { throw ExitCode.failure }
    }
}
