import ChiselBase
import ChiselTensor

/// Building kernel-layer objects from named weights, shapes checked against the configuration.
enum Load {
    static func conv(_ w: some WeightStore, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int,
                     stride: Int = 1, padding: Int = 0, precision: Precision) throws -> Conv2D {
        let weights = try w.floats("\(name).weight", shape: [outChannels, inChannels, kernel, kernel])
        let bias = w.contains("\(name).bias") ? try w.floats("\(name).bias", shape: [outChannels]) : nil
        return try Conv2D(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride,
                          padding: padding, weights: weights, bias: bias, precision: precision)
    }

    /// A linear layer; a 1×1 convolution's [out, in, 1, 1] weights are accepted as the same thing.
    static func linear(_ w: some WeightStore, _ name: String, in inFeatures: Int, out outFeatures: Int,
                       precision: Precision) throws -> Linear {
        let name4D = (try? w.shape("\(name).weight")) == [outFeatures, inFeatures, 1, 1]
        let weights = try w.floats("\(name).weight", shape: name4D ? [outFeatures, inFeatures, 1, 1] : [outFeatures, inFeatures])
        let bias = w.contains("\(name).bias") ? try w.floats("\(name).bias", shape: [outFeatures]) : nil
        return try Linear(inFeatures: inFeatures, outFeatures: outFeatures, weights: weights, bias: bias,
                          precision: precision)
    }

    static func groupNorm(_ w: some WeightStore, _ name: String, groups: Int, channels: Int, epsilon: Double) throws
        -> GroupNorm
    {
        try GroupNorm(groups: groups, channels: channels, epsilon: Float(epsilon),
                      gamma: w.floats("\(name).weight", shape: [channels]),
                      beta: w.floats("\(name).bias", shape: [channels]))
    }

    static func layerNorm(_ w: some WeightStore, _ name: String, features: Int, epsilon: Double) throws -> LayerNorm {
        try LayerNorm(features: features, epsilon: Float(epsilon),
                      gamma: w.floats("\(name).weight", shape: [features]),
                      beta: w.floats("\(name).bias", shape: [features]))
    }
}
