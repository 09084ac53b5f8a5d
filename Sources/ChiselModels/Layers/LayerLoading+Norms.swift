import ChiselBase
import ChiselTensor

extension Load {
    /// diffusers' `RMSNorm`: a weight with `elementwise_affine` (then required), a bias when stored.
    static func rmsNorm(_ w: some WeightStore, _ name: String, features: Int, epsilon: Double, affine: Bool) throws
        -> RMSNorm
    {
        let weight = affine ? try w.floats("\(name).weight", shape: [features]) : nil
        let bias = affine && w.contains("\(name).bias") ? try w.floats("\(name).bias", shape: [features]) : nil
        return try RMSNorm(features: features, epsilon: Float(epsilon), weight: weight, bias: bias)
    }

    /// `nn.LayerNorm` that may have no bias (`bias=False`) or no affine step at all.
    static func layerNorm(_ w: some WeightStore, _ name: String, features: Int, epsilon: Double, affine: Bool) throws
        -> LayerNorm
    {
        let gamma = affine ? try w.floats("\(name).weight", shape: [features]) : [Float](repeating: 1, count: features)
        let beta = affine && w.contains("\(name).bias")
            ? try w.floats("\(name).bias", shape: [features]) : [Float](repeating: 0, count: features)
        return try LayerNorm(features: features, epsilon: Float(epsilon), gamma: gamma, beta: beta)
    }

    /// Linear layers that all read the same input, as one layer whose output rows hold theirs
    /// side by side (biases zero-filled for any that has none).
    static func fusedLinear(_ w: some WeightStore, _ names: [String], in inFeatures: Int, out outFeatures: Int,
                            precision: Precision) throws -> Linear {
        var weights: [Float] = [], biases: [[Float]?] = []
        for name in names {
            weights += try w.floats("\(name).weight", shape: [outFeatures, inFeatures])
            biases.append(w.contains("\(name).bias") ? try w.floats("\(name).bias", shape: [outFeatures]) : nil)
        }
        let bias: [Float]? = biases.allSatisfy { $0 == nil } ? nil
            : biases.flatMap { $0 ?? [Float](repeating: 0, count: outFeatures) }
        return try Linear(inFeatures: inFeatures, outFeatures: outFeatures * names.count, weights: weights, bias: bias,
                          precision: precision)
    }
}
