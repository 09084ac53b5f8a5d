import ChiselBase
import ChiselTensor

/// A LoRA file and the strength it is applied at (diffusers' `fuse_lora(lora_scale:)`,
/// AUTOMATIC1111's `<lora:name:scale>`).
public struct LoRAApplication: Sendable {
    public let file: LoRAFile
    public let scale: Float

    public init(file: LoRAFile, scale: Float) {
        self.file = file
        self.scale = scale
    }
}

/// A network's weights with LoRA layers merged in as each weight is read: `W + Σ scale ×
/// alpha / rank × up · down` over the LoRAs that adapt it, computed in FP32 before the network
/// converts the weight to its precision. Only one merged tensor exists at a time, so a
/// checkpoint with LoRAs needs no more memory than the checkpoint.
public struct LoRAWeights: WeightStore {
    struct Delta: Sendable {
        let file: LoRAFile
        let layer: LoRAFile.Layer
        let scale: Float
    }

    let base: any WeightStore
    let deltas: [String: [Delta]]

    public var source: String { base.source }

    /// Matches every layer of `loras` for `component` to a weight of `base` (whose names are
    /// listed in `names`), checking the shapes; a layer that matches nothing, or whose shape
    /// differs, is an error naming the file and the layer. Returns `base` itself when no LoRA
    /// adapts this network.
    ///
    /// `original` maps a UNet module named as the original (SGM) checkpoints name it — kohya's
    /// SDXL LoRAs say `input_blocks_4_1_transformer_blocks_0_attn1_to_q` — to diffusers' name.
    public static func merging(_ loras: [LoRAApplication], component: LoRAFile.Component, into base: any WeightStore,
                               names: [String], networkName: String,
                               original: (String) -> String? = { _ in nil }) throws -> any WeightStore {
        // A module's weight by the module's name, with `.` (diffusers) and `_` (kohya) separators.
        var byModule: [String: String] = [:]
        for name in names where name.hasSuffix(".weight") {
            let module = String(name.dropLast(".weight".count))
            byModule[module] = name
            byModule[module.replacingOccurrences(of: ".", with: "_")] = name
        }
        var deltas: [String: [Delta]] = [:]
        for lora in loras {
            var unmatched: [String] = []
            for layer in lora.file.layers(of: component) {
                var candidates = [layer.module, "text_model." + layer.module, "text_model_" + layer.module]
                if let renamed = original(layer.module) { candidates.append(renamed) }
                guard let target = candidates.lazy.compactMap({ byModule[$0] }).first else {
                    unmatched.append(layer.module)
                    continue
                }
                try check(layer, against: try base.shape(target), weight: target, file: lora.file)
                deltas[target, default: []].append(Delta(file: lora.file, layer: layer, scale: lora.scale))
            }
            guard unmatched.isEmpty else {
                throw ChiselError(.model, "\(unmatched.count) of its \(lora.file.layers(of: component).count) \(networkName) "
                                  + "layers match no weight of this model's \(networkName) (a LoRA for another "
                                  + "architecture?): " + LoRAFile.list(unmatched), file: lora.file.path)
            }
        }
        return deltas.isEmpty ? base : LoRAWeights(base: base, deltas: deltas)
    }

    static func check(_ layer: LoRAFile.Layer, against shape: [Int], weight: String, file: LoRAFile) throws {
        let out = shape.first ?? 0
        let columns = shape.dropFirst().reduce(1, *)
        let downColumns = layer.downShape.dropFirst().reduce(1, *)
        var fits = layer.upShape[0] == out && downColumns == columns
        if layer.isConvolution, shape.count == 4 { fits = fits && Array(layer.downShape[2...]) == Array(shape[2...]) }
        guard fits else {
            throw ChiselError(.model, "layer \(layer.module) (down \(layer.downShape), up \(layer.upShape)) does not fit "
                              + "the model's \(weight) of shape \(shape): a LoRA for another architecture?",
                              file: file.path, tensor: layer.down)
        }
    }

    public func contains(_ name: String) -> Bool { base.contains(name) }
    public func shape(_ name: String) throws -> [Int] { try base.shape(name) }

    public func floats(_ name: String) throws -> [Float] {
        var values = try base.floats(name)
        guard let adapters = deltas[name] else { return values }
        let rows = try base.shape(name).first ?? 0
        guard rows > 0, values.count % rows == 0 else { return values }
        let columns = values.count / rows
        for delta in adapters {
            let up = try delta.file.floats(delta.layer.up), down = try delta.file.floats(delta.layer.down)
            let rank = delta.layer.rank
            guard up.count == rows * rank, down.count == rank * columns else {
                throw ChiselError(.model, "LoRA factors of \(up.count) and \(down.count) values do not make \(rows)×\(columns)",
                                  file: delta.file.path, tensor: delta.layer.down)
            }
            // W += (scale · alpha / rank) · up (rows × rank) · down (rank × columns).
            try up.withUnsafeBufferPointer { u in
                try down.withUnsafeBufferPointer { d in
                    try values.withUnsafeMutableBufferPointer { w in
                        guard let a = u.baseAddress, let b = d.baseAddress, let c = w.baseAddress else { return }
                        try GEMM.sgemm(m: rows, n: columns, k: rank, alpha: delta.scale * delta.layer.factor, a: a, lda: rank,
                                       b: b, ldb: columns, beta: 1, c: c, ldc: columns)
                    }
                }
            }
        }
        return values
    }
}
