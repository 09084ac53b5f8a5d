import ChiselCore
import ChiselModels
import ChiselTensor
import Foundation

/// Times whole edits as `chisel bench --part edit` reports them: Stable Diffusion 1.5 (random
/// weights, the public configs, its PNDM scheduler) running the img2img and the 9-channel
/// inpainting graphs that `chisel img2img` / `chisel inpaint` run (built by `EditGraphs`, run
/// by the graph engine), which do what diffusers' `StableDiffusionImg2ImgPipeline` /
/// `StableDiffusionInpaintPipeline` do: prompt encoding, VAE encode (inpainting: also the masked
/// image's), the CFG UNet pairs of 20 steps × strength 0.75, VAE decode; plus what the commands
/// add around it (loading the PNG, inpainting's paste-back, saving). Model building is not timed.
///
/// Before the timed edits one short edit runs the same path as a warm-up: 20 steps × strength
/// `warmUpStrength` 0.05, two CFG pairs and every network once (tools/bench/diffusers_bench.py
/// warms diffusers' pipelines the same way).
public enum EditBenchmark {
    public enum Edit: String, Sendable, CaseIterable {
        case img2img, inpaint
        case img2imgCache3 = "img2img-cache3", img2imgGuidanceHalf = "img2img-guidance-half"
        case img2imgCache3GuidanceHalf = "img2img-cache3-guidance-half"
        case img2imgToMe = "img2img-tome05", img2imgCache3ToMe = "img2img-cache3-tome05"

        /// The step-skipping options the edit runs with (DeepCache's interval, guidance's end,
        /// token merging's ratio).
        var skipping: (cacheInterval: Int?, guidanceEnd: Double?, tokenMerging: Double?) {
            switch self {
            case .img2img, .inpaint: (nil, nil, nil)
            case .img2imgCache3: (3, nil, nil)
            case .img2imgGuidanceHalf: (nil, 0.5, nil)
            case .img2imgCache3GuidanceHalf: (3, 0.5, nil)
            case .img2imgToMe: (nil, nil, 0.5)
            case .img2imgCache3ToMe: (3, nil, 0.5)
            }
        }
    }

    public static let steps = 20
    public static let strength = 0.75
    public static let guidance = 7.5
    public static let seed = 0
    /// The warm-up edit's strength: int(20 × 0.05) = 1 step cut, two PNDM timesteps.
    public static let warmUpStrength = 0.05
    public static let prompt = "a photograph of an astronaut riding a horse"
    public static let negativePrompt = ""

    /// The row name; `pairs` is the number of UNet evaluations the edit ran (CFG pairs at batch 2).
    public static func rowName(_ edit: Edit, size: Int, pairs: Int) -> String {
        let what = strength == 0.75 ? "0.75" : String(strength)
        switch edit {
        case .img2img: return "img2img \(size)² \(steps) steps × \(what) (\(pairs) CFG pairs)"
        case .inpaint: return "inpaint \(size)² 9-channel \(steps) steps × \(what) (\(pairs) CFG pairs)"
        case .img2imgCache3: return "img2img \(size)² \(steps) steps × \(what), DeepCache every 3rd step"
        case .img2imgGuidanceHalf: return "img2img \(size)² \(steps) steps × \(what), guidance on the first half"
        case .img2imgCache3GuidanceHalf: return "img2img \(size)² \(steps) steps × \(what), DeepCache 3 + guidance on the first half"
        case .img2imgToMe: return "img2img \(size)² \(steps) steps × \(what), token merging 0.5"
        case .img2imgCache3ToMe: return "img2img \(size)² \(steps) steps × \(what), DeepCache 3 + token merging 0.5"
        }
    }

    /// Builds the model for each edit in `precision` (one at a time, so peak memory is one
    /// model's), warms it up and times `repeats` whole edits; the fastest is reported.
    /// `tokenizer` nil encodes the fixed `promptIDs` with the text encoder directly.
    public static func run(precision: Precision, edits: [Edit] = Edit.allCases, repeats: Int = 1, size: Int = 512,
                           tokenizer: CLIPTokenizer? = nil, log: (String) -> Void = { _ in }) async throws -> [ModelBenchmark.Row] {
        var rows: [ModelBenchmark.Row] = []
        for edit in edits {
            rows.append(try await time(edit, precision: precision, repeats: repeats, size: size, tokenizer: tokenizer, log: log))
        }
        return rows
    }

    private static func time(_ edit: Edit, precision: Precision, repeats: Int, size: Int, tokenizer: CLIPTokenizer?,
                             log: (String) -> Void) async throws -> ModelBenchmark.Row {
        log("building SD 1.5\(edit == .inpaint ? " inpainting (9-channel UNet)" : "") (\(precision.rawValue), random weights)")
        let model = try StableDiffusionModel.randomSD15(inpainting: edit == .inpaint, precision: precision, tokenizer: tokenizer)
        let scratch = try BenchmarkGraph.Scratch(image: testImage(size: size), mask: edit == .inpaint ? testMask(size: size) : nil)
        defer { scratch.remove() }
        let pairs = Locked(0)
        let events: RunEventSink = { event in
            if case .nodeProgress = event { pairs.withLock { $0 += 1 } }
        }

        /// One whole edit: the graph `chisel img2img` / `chisel inpaint` (strength < 1) run.
        func graph(strength: Double) throws -> BenchmarkGraph {
            var request = EditRequest(model: "random-weights:\(model.name)", image: scratch.image, output: scratch.output)
            request.prompt = prompt
            request.negativePrompt = negativePrompt
            request.steps = steps
            request.guidance = guidance
            request.seed = .fixed(UInt64(seed))
            (request.cacheInterval, request.guidanceEnd, request.tokenMerging) = edit.skipping
            let facts = StableDiffusionFacts(model: model)
            var inpaint = InpaintRequest(mask: scratch.mask)
            inpaint.strength = strength
            let json = edit != .inpaint ? try EditGraphs.img2img(request, facts: facts, strength: strength)
                : try EditGraphs.inpaint(request, inpaint, facts: facts)
            return try BenchmarkGraph(json, models: ["sd": model], output: scratch.output)
        }
        let warmUp = try graph(strength: warmUpStrength), timed = try graph(strength: strength)
        func runEdit(strength: Double) async throws -> Image {
            try await (strength == warmUpStrength ? warmUp : timed).run(events: events)
        }

        log("\(edit.rawValue): warm-up (the same edit at strength \(warmUpStrength))")
        _ = try await runEdit(strength: warmUpStrength)
        log("\(edit.rawValue): warm-up ran \(pairs.value) CFG pairs")
        _ = KernelProfile.report()
        var runs: [Double] = []
        var counted = 0
        for i in 0..<max(1, repeats) {
            pairs.withLock { $0 = 0 }
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try await runEdit(strength: strength)
            runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            counted = pairs.value
            guard result.width == size, result.height == size else {
                throw ChiselError(.internal, "the edit benchmark made a \(result.width)×\(result.height) image")
            }
            log(String(format: "%@: run %d %.2f s (%d CFG pairs)", edit.rawValue, i + 1, runs[runs.count - 1], counted))
        }
        ModelBenchmark.logProfile(log, runs: max(1, repeats))
        return ModelBenchmark.Row(name: rowName(edit, size: size, pairs: counted), precision: precision,
                                  seconds: runs.min() ?? 0, runs: runs)
    }

    /// A smooth colour image (the same formula as diffusers_bench.py's), in [0, 1].
    static func testImage(size: Int) throws -> Image {
        let n = size * size
        var pixels = [Float](repeating: 0, count: 3 * n)
        for y in 0..<size {
            for x in 0..<size {
                let i = y * size + x
                pixels[i] = Float(x) / Float(size - 1)
                pixels[n + i] = Float(y) / Float(size - 1)
                pixels[2 * n + i] = Float((x + y) % size) / Float(size - 1)
            }
        }
        return try Image(width: size, height: size, layout: .rgb, pixels: pixels)
    }

    /// 1 (repaint) in the centre square of half the side, 0 elsewhere.
    static func testMask(size: Int) throws -> Mask {
        let (lo, hi) = (size / 4, size - size / 4)
        var values = [Float](repeating: 0, count: size * size)
        for y in lo..<hi { for x in lo..<hi { values[y * size + x] = 1 } }
        return try Mask(width: size, height: size, values: values)
    }
}
