import ArgumentParser
import ChiselCore
import ChiselModels
import ChiselTensor
import Foundation

extension Precision: ExpressibleByArgument {}
extension ModelBenchmark.Part: ExpressibleByArgument {}

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Time the full-size SD 1.5 UNet and VAE (random weights) in FP32 and BF16.",
        discussion: """
            Builds the networks from Stable Diffusion 1.5's public configs with random weights (no \
            download; speed does not depend on the values) and prints the fastest of --repeats \
            runs after a warm-up: one UNet evaluation at batch 2 (a classifier-free-guidance pair), \
            VAE encode and decode, and each precision's peak resident memory. Each precision runs \
            in its own process so its peak memory is its own. tools/bench/diffusers_bench.py \
            times diffusers on the same configs.
            """)

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Only this precision (f32 or bf16); by default both, each in a child process.")
    var precision: Precision?

    @Option(name: .customLong("part"), help: "Only these networks (unet, vae); repeatable.")
    var parts: [ModelBenchmark.Part] = []

    @Option(help: "Timed runs after the warm-up; the fastest is reported.")
    var repeats: Int = 3

    @Option(help: "Image side in pixels (latents are an eighth of it).")
    var size: Int = 512

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard size >= 64, size % 64 == 0 else { throw ValidationError("--size must be a multiple of 64") }
    }

    func run() async throws {
        var results: [(Precision, [ModelBenchmark.Row], Int)] = []
        if let precision {
            let rows = try ModelBenchmark.run(precision: precision, parts: parts.isEmpty ? [.unet, .vae] : parts,
                                              repeats: repeats, size: size, log: { if !json { Terminal.err($0) } })
            results.append((precision, rows, ModelBenchmark.peakResidentBytes()))
        } else {
            for precision in Precision.allCases { results.append(try runChild(precision)) }
        }
        if json {
            Terminal.out(Self.json(results, size: size).serialized())
        } else {
            Terminal.out("what".padded(40) + " " + "dtype".padded(6) + " seconds")
            for (precision, rows, peak) in results {
                for row in rows {
                    Terminal.out(row.name.padded(40) + " " + precision.rawValue.padded(6) + String(format: " %7.2f", row.seconds))
                }
                Terminal.out("peak resident memory".padded(40) + " " + precision.rawValue.padded(6)
                             + String(format: " %7.2f GiB", Double(peak) / 1_073_741_824))
            }
        }
    }

    /// Runs this command for one precision in a child process and reads its JSON.
    private func runChild(_ precision: Precision) throws -> (Precision, [ModelBenchmark.Row], Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: process.executableURL?.path ?? "") {
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        }
        var arguments = ["bench", "--json", "--precision", precision.rawValue, "--repeats", String(repeats),
                         "--size", String(size)]
        for part in parts { arguments += ["--part", part.rawValue] }
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        if !json { Terminal.err("running the \(precision.rawValue) benchmark in a child process") }
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ChiselError(.internal, "the \(precision.rawValue) benchmark failed (exit \(process.terminationStatus))")
        }
        let parsed = try JSONParser.parse(Array(data))
        guard case .array(let entries)? = parsed["results"], let entry = entries.first,
            case .array(let rowsJSON)? = entry["rows"], case .int(let peak)? = entry["peak_resident_bytes"]
        else { throw ChiselError(.internal, "unreadable benchmark output") }
        let rows = rowsJSON.compactMap { row -> ModelBenchmark.Row? in
            guard let name = row["name"]?.stringValue, case .double(let seconds)? = row["seconds"] else { return nil }
            return ModelBenchmark.Row(name: name, precision: precision, seconds: seconds, runs: [])
        }
        return (precision, rows, peak)
    }

    static func json(_ results: [(Precision, [ModelBenchmark.Row], Int)], size: Int) -> JSONValue {
        .object([
            JSONMember(key: "model", value: "stable-diffusion-1.5 (random weights)"),
            JSONMember(key: "size", value: .int(size)),
            JSONMember(key: "threads", value: .int(ProcessInfo.processInfo.activeProcessorCount)),
            JSONMember(key: "results", value: .array(results.map { precision, rows, peak in
                .object([
                    JSONMember(key: "precision", value: .string(precision.rawValue)),
                    JSONMember(key: "peak_resident_bytes", value: .int(peak)),
                    JSONMember(key: "rows", value: .array(rows.map { row in
                        .object([
                            JSONMember(key: "name", value: .string(row.name)),
                            JSONMember(key: "seconds", value: .double(row.seconds)),
                            JSONMember(key: "runs", value: .array(row.runs.map { .double($0) })),
                        ])
                    })),
                ])
            })),
        ])
    }
}

extension String {
    func padded(_ width: Int) -> String { padding(toLength: max(width, count), withPad: " ", startingAt: 0) }
}
