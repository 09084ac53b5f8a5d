import ArgumentParser
import ChiselCore
import ChiselModelStages
import ChiselModels
import ChiselTensor
import Foundation

extension Precision: ExpressibleByArgument {
    /// `fp32` too, as `--dtype` and the graphs' model option spell it.
    public init?(argument: String) {
        self.init(rawValue: argument == "fp32" ? "f32" : argument)
    }
}
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

            --part edit (or img2img, inpaint) adds whole edits, which run only when asked for (at \
            512² each takes minutes per precision): SD 1.5 with random weights (UNet, VAE, CLIP \
            ViT-L text encoder, PNDM scheduler as its scheduler_config.json) editing a 512² image \
            with 20 steps × strength 0.75 and guidance 7.5, as diffusers' img2img and inpainting \
            pipelines do (16 CFG pairs: PNDM's PLMS schedule has 21 timesteps for 20 steps); \
            inpainting uses a 9-channel UNet, a mask and the masked image's VAE encode. An edit \
            is timed whole: prompt encoding, VAE encode, the UNet pairs, VAE decode; model \
            building is not. A short edit (strength 0.05: two CFG pairs, every network once) \
            warms up the same path before the --edit-repeats timed edits.

            --part img2img-cache3, img2img-guidance-half, img2img-cache3-guidance-half, \
            img2img-tome05 and img2img-cache3-tome05 time that img2img edit with step-skipping \
            options: DeepCache every 3rd step, guidance on the first half of the steps, token \
            merging at ratio 0.5, and their pairs.

            --part amused (or amused-256, amused-512) times whole aMUSEd edits on the public \
            architectures with random weights: text-to-image with 12 steps and img2img at strength \
            0.5 of 12 steps, guidance 10, at 256² and 512², as diffusers' AmusedPipeline and \
            AmusedImg2ImgPipeline run them (prompt encoding, VQ encode, the guided transformer \
            steps with their sampling, VQ decode).

            --part unet-xl times SDXL 1.0's UNet (a CFG pair with its added text and size \
            embedding) and --part vae-xl its VAE's decode, at --size (1024 and 768 are SDXL's), \
            built from the public configs with random weights.

            --part controlnet times SD 1.5's ControlNet (control_v11p_sd15_canny's config) with \
            the UNet, a CFG pair; --part adapter the T2I-Adapter (t2iadapter_canny_sd15v2's \
            config) once and the UNet pair with its features.

            --part recipes (or turbo-taesd, turbo, lcm) times the fast recipes, 512² img2img: \
            SD-Turbo (SD 2.1 UNet and text encoder, Euler with trailing spacing), 2 steps × \
            strength 0.5, guidance 0, with TAESD and with the full VAE; SD 1.5 + LCM-LoRA with \
            the LCM scheduler, 4 steps × 0.5, guidance 1 (the LoRA is merged at load, which is \
            not timed). --part tiled-2048 is that LCM recipe on a 2048² image with the VAE \
            tiled (--vae-tiling on); with --precision bf16 and no other part, the peak resident \
            memory shown is that edit's. It takes minutes and has no warm-up run.
            """)

    @Flag(help: "Print one JSON object instead of a table.")
    var json = false

    @Option(help: "Kernel threads (default: the CPUs the process may use — affinity mask and cgroup quota; CHISEL_THREADS sets it too).")
    var threads: Int?

    @Option(name: [.customLong("precision"), .customLong("dtype")],
            help: "Only this precision (f32 or bf16; fp32 too, as --dtype elsewhere); by default both, each in a child process.")
    var precision: Precision?

    @Option(name: .customLong("part"),
            help: ArgumentHelp(
                "Only these parts (repeatable); by default unet and vae.",
                discussion: "unet, vae, uvit, vq, kernels, img2img, inpaint, edit (both edits), amused-256, amused-512, "
                    + "amused (both), turbo-taesd, turbo, lcm, recipes (those three), tiled-2048."))
    var parts: [ModelBenchmark.Part] = []

    @Option(help: "Timed runs after the warm-up; the fastest is reported.")
    var repeats: Int = 3

    @Option(help: "Image side in pixels (latents are an eighth of it).")
    var size: Int = 512

    @Option(help: "Timed runs of each whole edit (--part edit) after the warm-up; the fastest is reported.")
    var editRepeats: Int = 1

    @Option(help: ArgumentHelp("A CLIP tokenizer folder (vocab.json, merges.txt) for the edits' prompts; by default the "
                               + "CLIP vocabulary that ships with Chisel.", valueName: "folder"))
    var tokenizer: String?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1") }
        guard editRepeats >= 1 else { throw ValidationError("--edit-repeats must be at least 1") }
        guard size >= 64, size % 64 == 0 else { throw ValidationError("--size must be a multiple of 64") }
    }

    /// The parts to run, `edit` spelled out.
    var chosenParts: [ModelBenchmark.Part] {
        (parts.isEmpty ? ModelBenchmark.Part.defaults : parts).flatMap { part -> [ModelBenchmark.Part] in
            switch part {
            case .edit: [.img2img, .inpaint]
            case .amused: [.amused256, .amused512]
            case .recipes: [.turboTAESD, .turbo, .lcm]
            default: [part]
            }
        }
    }

    var edits: [EditBenchmark.Edit] {
        EditBenchmark.Edit.allCases.filter { edit in chosenParts.contains { $0.rawValue == edit.rawValue } }
    }

    var recipes: [RecipeBenchmark.Recipe] {
        RecipeBenchmark.Recipe.allCases.filter { recipe in chosenParts.contains { $0.rawValue == recipe.rawValue } }
    }

    var amusedArchitectures: [AmusedModel.Architecture] {
        AmusedModel.Architecture.allCases.filter { a in chosenParts.contains { $0.rawValue == a.rawValue } }
    }

    func run() async throws {
        var results: [(Precision, [ModelBenchmark.Row], Int)] = []
        let log: (String) -> Void = { if !json { Terminal.err($0) } }
        log("kernel threads: \(CPUBudget.summary)")
        let tokenizerFolder = edits.isEmpty ? nil : tokenizer
        if !edits.isEmpty {
            log("edit prompts: tokenized with " + (tokenizerFolder ?? "the bundled CLIP vocabulary"))
        }
        if let precision {
            var rows = try ModelBenchmark.run(precision: precision, parts: chosenParts, repeats: repeats, size: size, log: log)
            if !edits.isEmpty {
                rows += try await EditBenchmark.run(
                    precision: precision, edits: edits, repeats: editRepeats, size: size,
                    tokenizer: try tokenizerFolder.map { try CLIPTokenizer(folder: $0) } ?? CLIPTokenizer.bundled(family: .sd1),
                    log: log)
            }
            if !recipes.isEmpty {
                rows += try await RecipeBenchmark.run(precision: precision, recipes: recipes, repeats: editRepeats, size: size, log: log)
            }
            if !amusedArchitectures.isEmpty {
                rows += try await AmusedBenchmark.run(precision: precision, architectures: amusedArchitectures,
                                                      repeats: editRepeats, log: log)
            }
            results.append((precision, rows, ModelBenchmark.peakResidentBytes()))
        } else {
            for precision in Precision.allCases { results.append(try runChild(precision, tokenizer: tokenizerFolder)) }
        }
        if json {
            Terminal.out(Self.json(results, size: size).serialized())
        } else {
            let width = max(40, results.flatMap { $0.1 }.map(\.name.count).max() ?? 0)
            Terminal.out("what".padded(width) + " " + "dtype".padded(6) + " seconds")
            for (precision, rows, peak) in results {
                for row in rows {
                    Terminal.out(row.name.padded(width) + " " + precision.rawValue.padded(6) + String(format: " %7.2f", row.seconds))
                }
                Terminal.out("peak resident memory".padded(width) + " " + precision.rawValue.padded(6)
                             + String(format: " %7.2f GiB", Double(peak) / 1_073_741_824))
            }
        }
    }

    /// Runs this command for one precision in a child process and reads its JSON.
    private func runChild(_ precision: Precision, tokenizer: String?) throws -> (Precision, [ModelBenchmark.Row], Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        if !FileManager.default.isExecutableFile(atPath: process.executableURL?.path ?? "") {
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        }
        var arguments = ["bench", "--json", "--precision", precision.rawValue, "--repeats", String(repeats),
                         "--size", String(size)]
        for part in parts { arguments += ["--part", part.rawValue] }
        if !edits.isEmpty || !amusedArchitectures.isEmpty || !recipes.isEmpty { arguments += ["--edit-repeats", String(editRepeats)] }
        if let tokenizer { arguments += ["--tokenizer", tokenizer] }
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
            JSONMember(key: "chisel", value: .string(ChiselVersion.text)),
            JSONMember(key: "model", value: "stable-diffusion-1.5 (random weights)"),
            JSONMember(key: "size", value: .int(size)),
            JSONMember(key: "threads", value: .int(CPUBudget.threads)),
            JSONMember(key: "threads_reason", value: .string(CPUBudget.reason)),
            JSONMember(key: "openmp_threads", value: .int(CPUBudget.openMPThreads)),
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
