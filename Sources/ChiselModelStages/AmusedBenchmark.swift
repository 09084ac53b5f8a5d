import ChiselCore
import ChiselModels
import ChiselTensor
import Foundation

/// Times whole aMUSEd edits as `chisel bench --part amused` reports them: the public amused-256
/// and amused-512 architectures with random weights, text-to-image (12 steps) and img2img
/// (strength 0.5 of 12 steps), guidance 10, run stage by stage as the MVTM graphs chain them and
/// as diffusers' `AmusedPipeline` / `AmusedImg2ImgPipeline` run: prompt encoding, (VQ encode and
/// masking), the guided transformer steps with their sampling, VQ decode. Model building is not
/// timed; a short run of the same path warms up first (1 step; img2img at strength 0.1), as
/// tools/bench/diffusers_bench.py does.
public enum AmusedBenchmark {
    public enum Edit: String, Sendable, CaseIterable {
        case txt2img, img2img
    }

    public static let steps = 12
    public static let guidance = 10.0
    public static let strength = 0.5
    public static let warmUpStrength = 0.1
    public static let seed = 0

    public static func rowName(_ architecture: AmusedModel.Architecture, _ edit: Edit) -> String {
        switch edit {
        case .txt2img: "\(architecture.rawValue) txt2img \(steps) steps"
        case .img2img: "\(architecture.rawValue) img2img \(strength) × \(steps)"
        }
    }

    public static func run(precision: Precision, architectures: [AmusedModel.Architecture], repeats: Int = 1,
                           tokenizer: CLIPTokenizer? = nil, log: (String) -> Void = { _ in }) async throws -> [ModelBenchmark.Row] {
        var rows: [ModelBenchmark.Row] = []
        for architecture in architectures {
            log("building \(architecture.rawValue) (\(precision.rawValue), random weights)")
            let model = try AmusedModel.random(architecture, precision: precision, tokenizer: tokenizer)
            for edit in Edit.allCases {
                rows.append(try await time(edit, model: model, architecture: architecture, precision: precision,
                                           repeats: repeats, log: log))
            }
        }
        return rows
    }

    private static func time(_ edit: Edit, model: AmusedModel, architecture: AmusedModel.Architecture,
                             precision: Precision, repeats: Int, log: (String) -> Void) async throws -> ModelBenchmark.Row {
        let side = architecture.imageSide
        let image = try EditBenchmark.testImage(size: side)
        let stepCount = Locked(0)
        let context = StageContext(node: "bench", run: RunInfo(), files: FileLedger(), events: { event in
            if case .nodeProgress = event { stepCount.withLock { $0 += 1 } }
        })
        func call(_ stage: any Stage.Type, _ params: [ParamSetting] = [], _ inputs: [InputSetting] = []) -> StageCall {
            StageCall(stage, params: params, inputs: [EncodePromptStage.model(model)] + inputs, context: context)
        }
        func output<V>(_ outputs: StageOutputs, _ port: Output<V>) throws -> V {
            guard let value = outputs[port] else { throw ChiselError(.internal, "the aMUSEd benchmark got no \(port.spec.name)") }
            return value
        }
        // img2img is the graph `chisel img2img` runs on an aMUSEd model; text-to-image, which no
        // command runs, chains the stages directly.
        let scratch = try BenchmarkGraph.Scratch(image: image)
        defer { scratch.remove() }
        func img2imgGraph(strength: Double) throws -> BenchmarkGraph {
            var request = EditRequest(model: "random-weights:amused", image: scratch.image, output: scratch.output)
            request.prompt = EditBenchmark.prompt
            request.steps = steps
            request.guidance = guidance
            request.seed = .fixed(UInt64(seed))
            return try BenchmarkGraph(EditGraphs.amused(request, inpaint: nil, strength: strength, facts: AmusedFacts(model: model)),
                                      models: ["amused": model], output: scratch.output)
        }
        let graphs = edit == .img2img ? (warmUp: try img2imgGraph(strength: warmUpStrength), timed: try img2imgGraph(strength: strength))
            : nil
        let events: RunEventSink = { event in
            if case .nodeProgress = event { stepCount.withLock { $0 += 1 } }
        }
        func runEdit(steps: Int, strength: Double) async throws -> Image {
            if let graphs { return try await (strength == warmUpStrength ? graphs.warmUp : graphs.timed).run(events: events) }
            let text = try output(try await EncodePromptStage.run(call(EncodePromptStage.self, [
                EncodePromptStage.prompt(EditBenchmark.prompt)])), EncodePromptStage.conditioning)
            let grid: Tokens
            var predictParams: [ParamSetting] = [PredictTokensStage.guidance(guidance)]
            switch edit {
            case .txt2img:
                grid = try output(try await EmptyTokensStage.run(call(EmptyTokensStage.self, [
                    EmptyTokensStage.width(side), EmptyTokensStage.height(side)])), EmptyTokensStage.tokens)
                predictParams += [PredictTokensStage.steps(steps), PredictTokensStage.seed(.fixed(UInt64(seed)))]
            case .img2img:
                let encoded = try output(try await VQEncodeStage.run(call(VQEncodeStage.self, [], [VQEncodeStage.image(image)])),
                                         VQEncodeStage.tokens)
                grid = try output(try await MaskTokensStage.run(call(MaskTokensStage.self, [
                    MaskTokensStage.mode(.strength), MaskTokensStage.strength(strength), MaskTokensStage.steps(steps),
                    MaskTokensStage.seed(.fixed(UInt64(seed)))], [MaskTokensStage.tokens(encoded)])), MaskTokensStage.masked)
            }
            let predicted = try output(try await PredictTokensStage.run(call(PredictTokensStage.self, predictParams, [
                PredictTokensStage.tokens(grid), PredictTokensStage.conditioning(text)])), PredictTokensStage.predicted)
            return try output(try await VQDecodeStage.run(call(VQDecodeStage.self, [], [VQDecodeStage.tokens(predicted)])),
                              VQDecodeStage.image)
        }
        let name = rowName(architecture, edit)
        _ = try await runEdit(steps: edit == .txt2img ? 1 : steps, strength: warmUpStrength)
        log("\(name): warm-up ran \(stepCount.value) step(s)")
        _ = KernelProfile.report()
        var runs: [Double] = []
        for i in 0..<max(1, repeats) {
            stepCount.withLock { $0 = 0 }
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try await runEdit(steps: steps, strength: strength)
            runs.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            guard result.width == side, result.height == side else {
                throw ChiselError(.internal, "the aMUSEd benchmark made a \(result.width)×\(result.height) image")
            }
            log(String(format: "%@: run %d %.2f s (%d steps)", name, i + 1, runs[runs.count - 1], stepCount.value))
        }
        ModelBenchmark.logProfile(log, runs: max(1, repeats))
        return ModelBenchmark.Row(name: name, precision: precision, seconds: runs.min() ?? 0, runs: runs)
    }
}
