import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation

/// Runs the graphs the edit benchmarks time: built by `EditGraphs` as the commands build them,
/// compiled and run by the graph engine as `chisel img2img` runs them, with the model already
/// built (random weights) and the input image and mask written to a scratch folder. What is
/// timed is the whole run: loading the PNGs, every stage, saving the result.
struct BenchmarkGraph {
    let plan: Plan
    let models: ModelStore
    let output: String

    /// A scratch folder holding `image` (and `mask`) as PNG files, for the graph to load.
    struct Scratch {
        let folder: String
        var image: String { folder + "/image.png" }
        var mask: String { folder + "/mask.png" }
        var output: String { folder + "/result.png" }

        init(image: Image, mask: Mask? = nil) throws {
            folder = NSTemporaryDirectory() + "chisel-bench-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try ImageWriter.write(image, to: self.image)
            if let mask { try ImageWriter.write(Image(width: mask.width, height: mask.height, layout: .gray, pixels: mask.values), to: self.mask) }
        }

        func remove() { try? FileManager.default.removeItem(atPath: folder) }
    }

    init(_ graph: JSONValue, models: [String: any LoadedModel], output: String) throws {
        var registry = StageRegistry()
        try BuiltinStages.register(in: &registry)
        try InpaintingStages.register(in: &registry)
        try ModelStages.register(in: &registry)
        plan = try GraphCompiler.compile(graph, file: nil, directory: FileManager.default.currentDirectoryPath, registry: registry,
                                         options: GraphOptions(workingDirectory: FileManager.default.currentDirectoryPath,
                                                               checkInputFiles: false))
        self.models = ModelStore(loaded: models)
        self.output = output
    }

    /// One run; `events` sees the run's progress (denoising steps as node progress).
    func run(events: @escaping RunEventSink) async throws -> Image {
        try? FileManager.default.removeItem(atPath: output)
        _ = try await GraphRunner(plan: plan, models: models, events: events).run(plan.runInfo())
        return try ImageReader.read(path: output).image
    }
}
