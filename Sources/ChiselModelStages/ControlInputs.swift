import ChiselCore
import ChiselModels
import ChiselStages
import ChiselTensor

/// The control input of a denoise, checked against the checkpoint and prepared once: each
/// ControlNet with its control image at the latent's pixel size, channels-last as the networks
/// take it.
struct ControlInputs {
    struct Prepared {
        var unit: Control.Unit
        var network: ControlNetModel
        var name: String
        /// 1×H×W×C, repeated per sample as the loop needs it.
        var image: Tensor
    }

    /// A T2I-Adapter's features, computed once and multiplied by its scale (one row each).
    struct Adapted {
        var unit: Control.Unit
        var name: String
        var features: [Tensor]
    }

    var units: [Prepared] = []
    var adapters: [Adapted] = []

    /// Follows denoise's control chain upstream (controlnet nodes, each with its model and the
    /// chain before it) and rejects a ControlNet that cannot steer the checkpoint, naming its node.
    static func validate(_ check: inout StageCheck, checkpoint: StableDiffusionFacts) {
        var next = check.source(of: DenoiseStage.control)
        var seen: Set<String> = []
        while case .node(let id, let stage, _)? = next, [ControlNetStage.schema.name, T2IAdapterStage.schema.name].contains(stage),
              seen.insert(id).inserted {
            let sources = check.graphSources[id] ?? [:]
            switch ModelFacts(sources[ControlNetStage.model.name]) {
            case .controlNet(let controlNet)?:
                if let problem = controlNet.mismatch(with: checkpoint) {
                    check.reject(input: DenoiseStage.control, "node '\(id)': \(problem)", code: .model)
                }
            case .t2iAdapter(let adapter)?:
                if let problem = adapter.mismatch(with: checkpoint) {
                    check.reject(input: DenoiseStage.control, "node '\(id)': \(problem)", code: .model)
                }
            default:
                break
            }
            next = sources[ControlNetStage.previous.name]
        }
    }

    init(_ call: StageCall, model sd: StableDiffusionModel, latent: Latent) throws {
        guard let control = try call[DenoiseStage.control] else { return }
        let facts = StableDiffusionFacts(model: sd)
        let (width, height) = (latent.width * sd.vae.downscale, latent.height * sd.vae.downscale)
        for (index, unit) in control.units.enumerated() {
            if let adapter = unit.model as? LoadedT2IAdapter {
                if let problem = T2IAdapterFacts(config: adapter.network.config).mismatch(with: facts) {
                    throw call.failure("T2I-Adapter \(index) (\(adapter.name)): \(problem)", code: .model)
                }
                let image = try Self.controlImage(unit, width: width, height: height, channels: adapter.network.config.inChannels)
                let features = try adapter.network(image).map { Ops.scale($0, by: Float(unit.scale)) }
                adapters.append(Adapted(unit: unit, name: adapter.name, features: features))
                continue
            }
            guard let handle = unit.model as? LoadedControlNet else {
                throw call.failure("control \(index) is a \(unit.model.kind) model, not a ControlNet or T2I-Adapter", code: .model)
            }
            if let problem = ControlNetFacts(config: handle.network.config).mismatch(with: facts) {
                throw call.failure("ControlNet \(index) (\(handle.name)): \(problem)", code: .model)
            }
            units.append(Prepared(unit: unit, network: handle.network, name: handle.name,
                                  image: try Self.controlImage(unit, width: width, height: height,
                                                               channels: handle.network.config.conditioningChannels)))
        }
    }

    /// The control image as the ControlNet takes it: RGB in [0, 1] (diffusers' control image
    /// processor does not normalise), resized with Lanczos when its size is not the edit's (as
    /// the pipelines resize a PIL image), and −1 under the inpaint mask.
    static func controlImage(_ unit: Control.Unit, width: Int, height: Int, channels: Int) throws -> Tensor {
        let rgb = unit.image.converted(to: channels == 1 ? .gray : .rgb)
        var planes = rgb.pixels
        if rgb.width != width || rgb.height != height {
            planes = Resampler.resample(planes, planes: channels == 1 ? 1 : 3, width: rgb.width, height: rgb.height, outWidth: width,
                                        outHeight: height, filter: .lanczos)
        }
        let n = width * height
        var covered = [Bool](repeating: false, count: n)
        if let mask = unit.mask {
            let values = LatentMask.values(mask, width: width, height: height, binarize: false)
            for i in 0..<n { covered[i] = values[i] > 0.5 }
        }
        guard channels == 3 || channels == 1 else {
            throw ChiselError(.model, "the network takes \(channels)-channel control images; Chisel gives RGB (3) or grey (1) ones")
        }
        var data = [Float](repeating: 0, count: n * channels)
        for i in 0..<n {
            for c in 0..<channels { data[i * channels + c] = covered[i] ? -1 : planes[c * n + i] }
        }
        return try Tensor(shape: [1, height, width, channels], data: data)
    }

    /// The summed residuals of the ControlNets acting at loop index `step`, for the UNet's
    /// `input` (latents only, [negative, positive] when guided); nil when none acts. A unit in
    /// guess mode runs on the positive half only, the negative half getting zeros.
    func residuals(step: Int, of count: Int, timestep: Double, input: Tensor, guided: Bool, context: Tensor,
                   added: (textEmbeds: Tensor, timeIds: [[Double]])?) throws -> ControlResiduals? {
        var total: ControlResiduals?
        for prepared in units {
            let unit = prepared.unit
            let scale = unit.acts(atStep: step, of: count) ? unit.scale : 0
            // diffusers still runs a ControlNet at scale 0; its residuals are zeros, which change no sum.
            guard scale != 0 else { continue }
            let halve = unit.guessMode && guided
            let rows = halve ? input.shape[0] / 2 : input.shape[0]
            let sample = halve ? try Self.secondHalf(input) : input
            let text = halve ? try Self.secondHalf(context) : context
            let extra = try added.map { halve ? (try Self.secondHalf($0.textEmbeds), Array($0.timeIds.suffix(rows))) : $0 }
            let image = try Self.repeated(prepared.image, rows)
            var residuals = try prepared.network(sample, timesteps: [timestep], context: text, condition: image, scale: Float(scale),
                                                 guessMode: unit.guessMode, added: extra)
            if halve {
                residuals = ControlResiduals(down: try residuals.down.map(Self.zeroFirstHalf), mid: try Self.zeroFirstHalf(residuals.mid))
            }
            total = try total.map { try $0.adding(residuals) } ?? residuals
        }
        return total
    }

    /// The summed features of the adapters acting at loop index `step` of `count`, repeated for
    /// the UNet's `rows`; empty when none acts. An adapter acts from `start` until the step
    /// int(count × end), as the XL adapter pipeline's adapter_conditioning_factor.
    func adapterFeatures(step: Int, of count: Int, rows: Int) throws -> [Tensor] {
        var total: [Tensor] = []
        for adapted in adapters {
            let unit = adapted.unit
            guard Double(step) / Double(count) >= unit.start, step < Int(Double(count) * unit.end) else { continue }
            if total.isEmpty {
                total = adapted.features
            } else {
                guard total.count == adapted.features.count, zip(total, adapted.features).allSatisfy({ $0.shape == $1.shape }) else {
                    throw ChiselError(.invalidParameter, "T2I-Adapters with different feature shapes cannot be summed")
                }
                total = try zip(total, adapted.features).map { try Ops.add($0, $1) }
            }
        }
        return try total.map { try Self.repeated($0, rows) }
    }

    static func secondHalf(_ x: Tensor) throws -> Tensor {
        let half = x.data.count / 2
        return try Tensor(shape: [x.shape[0] / 2] + x.shape.dropFirst(), data: Array(x.data[half...]))
    }

    /// `x` behind as many zeros: torch.cat([zeros_like(x), x]).
    static func zeroFirstHalf(_ x: Tensor) throws -> Tensor {
        try Tensor(shape: [x.shape[0] * 2] + x.shape.dropFirst(), data: [Float](repeating: 0, count: x.data.count) + x.data)
    }

    static func repeated(_ x: Tensor, _ rows: Int) throws -> Tensor {
        rows == 1 ? x : try Tensor(shape: [rows] + x.shape.dropFirst(), data: Array([[Float]](repeating: x.data, count: rows).joined()))
    }

    /// AUTOMATIC1111's ControlNet extension's infotext entries, `ControlNet 0`, `ControlNet 1`, ….
    var settings: [GenerationInfo.Setting] {
        let named = units.map { ($0.unit, $0.name) } + adapters.map { ($0.unit, $0.name) }
        return named.enumerated().map { index, entry in
            let (unit, name) = entry
            let fields = ["Module: \(unit.module)", "Model: \(name)", "Weight: \(DenoiseStage.number(unit.scale))",
                          "Resize Mode: Just Resize", "Guidance Start: \(DenoiseStage.number(unit.start))",
                          "Guidance End: \(DenoiseStage.number(unit.end))",
                          "Control Mode: \(unit.guessMode ? "ControlNet is more important" : "Balanced")"]
            return GenerationInfo.Setting("ControlNet \(index)", fields.joined(separator: ", "))
        }
    }
}
