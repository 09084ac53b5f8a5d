import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `AutoencoderTiny`: TAESD (Bohan 2023), a small convolutional encoder and decoder
/// with Stable Diffusion's latent space, for fast previews and CPU edits.
///
/// The encoder takes the image in [0, 1] (`(x + 1) / 2`) through a 3×3 convolution and, per
/// level, a stride-2 3×3 convolution (none on the first level) and residual blocks; the decoder
/// squashes the latent to ±3 (`tanh(z / 3) · 3`), then per level residual blocks, a nearest ×2
/// upsampling and a 3×3 convolution, and gives `2y − 1`. A residual block is `ReLU(conv3(ReLU(
/// conv2(ReLU(conv1(x))))) + skip(x))`. The latents are deterministic: encoding draws nothing.
public final class AutoencoderTiny: LatentAutoencoder {
    public let config: TinyAutoencoderConfig
    let encoder: [Layer]
    let decoder: [Layer]

    enum Layer: Sendable {
        case conv(Conv2D, relu: Bool)
        case block(Block)
        case upsampleConv(UpsampleConv2D)
    }

    final class Block: Sendable {
        let conv1: Conv2D, conv2: Conv2D, conv3: Conv2D
        let skip: Conv2D?

        init(_ w: ScopedWeights, in inChannels: Int, out outChannels: Int, precision: Precision) throws {
            conv1 = try Load.conv(w, "conv.0", in: inChannels, out: outChannels, kernel: 3, padding: 1, precision: precision)
            conv2 = try Load.conv(w, "conv.2", in: outChannels, out: outChannels, kernel: 3, padding: 1, precision: precision)
            conv3 = try Load.conv(w, "conv.4", in: outChannels, out: outChannels, kernel: 3, padding: 1, precision: precision)
            skip = inChannels == outChannels
                ? nil : try Load.conv(w, "skip", in: inChannels, out: outChannels, kernel: 1, precision: precision)
        }

        func callAsFunction(_ x: Tensor) throws -> Tensor {
            if conv1.precision == .bf16 {
                // The middle stays in bfloat16 (what the next convolution would convert it to),
                // each ReLU fused into its convolution.
                let h = try conv2.halfOutput(try conv1.halfOutput(x, relu: true), relu: true)
                return try conv3.relu(h, adding: try skip.map { try $0(x) } ?? x)
            }
            let h = AutoencoderTiny.relu(try conv2(AutoencoderTiny.relu(try conv1(x))))
            return AutoencoderTiny.relu(try conv3(h, adding: try skip.map { try $0(x) } ?? x))
        }
    }

    public var className: String { "AutoencoderTiny" }
    public var downscale: Int { config.downscale }
    public var latentChannels: Int { config.latentChannels }
    public var scalingFactor: Double { config.scalingFactor }

    /// Weights named as diffusers saves them: `encoder.layers.N.…` and `decoder.layers.N.…`,
    /// N counting every layer of the stack (activations and upsamplings included).
    public init(config: TinyAutoencoderConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        var layers: [Layer] = []
        var index = 0
        let e = weights.scoped("encoder.layers.")
        for (level, channels) in config.encoderChannels.enumerated() {
            if level == 0 {
                layers.append(.conv(try Load.conv(e, "\(index)", in: config.inChannels, out: channels, kernel: 3, padding: 1,
                                                  precision: precision), relu: false))
            } else {
                // A stride-2 convolution within the level's width (diffusers takes the level's own width in).
                layers.append(.conv(try Load.conv(e, "\(index)", in: channels, out: channels,
                                                  kernel: 3, stride: 2, padding: 1, precision: precision), relu: false))
            }
            index += 1
            for _ in 0..<config.encoderBlocks[level] {
                layers.append(.block(try Block(e.scoped("\(index)."), in: channels, out: channels, precision: precision)))
                index += 1
            }
        }
        layers.append(.conv(try Load.conv(e, "\(index)", in: config.encoderChannels.last ?? 0, out: config.latentChannels,
                                          kernel: 3, padding: 1, precision: precision), relu: false))
        encoder = layers

        layers = []
        let d = weights.scoped("decoder.layers.")
        let first = config.decoderChannels[0]
        layers.append(.conv(try Load.conv(d, "0", in: config.latentChannels, out: first, kernel: 3, padding: 1,
                                          precision: precision), relu: true))
        index = 2  // the convolution, then its ReLU
        for (level, channels) in config.decoderChannels.enumerated() {
            let last = level == config.decoderChannels.count - 1
            for _ in 0..<config.decoderBlocks[level] {
                layers.append(.block(try Block(d.scoped("\(index)."), in: channels, out: channels, precision: precision)))
                index += 1
            }
            let out = last ? config.outChannels : channels
            if last {
                layers.append(.conv(try Load.conv(d, "\(index)", in: channels, out: out, kernel: 3, padding: 1,
                                                  precision: precision), relu: false))
            } else {
                index += 1  // the upsampling
                let w = try d.floats("\(index).weight", shape: [out, channels, 3, 3])
                layers.append(.upsampleConv(try UpsampleConv2D(inChannels: channels, outChannels: out, weights: w,
                                                               bias: d.contains("\(index).bias") ? try d.floats("\(index).bias", shape: [out]) : nil,
                                                               precision: precision)))
            }
            index += 1
        }
        decoder = layers
    }

    /// In place on a tensor the caller gives up (a layer's fresh output), so no copy is made.
    static func relu(_ x: consuming Tensor) -> Tensor {
        var out = x
        out.data.withUnsafeMutableBufferPointer { values in
            for i in values.indices where values[i] < 0 { values[i] = 0 }
        }
        return out
    }

    static func run(_ layers: [Layer], _ input: Tensor) throws -> Tensor {
        var x = input
        for layer in layers {
            switch layer {
            case .conv(let conv, let relu):
                x = try conv(x)
                if relu { x = Self.relu(consume x) }
            case .block(let block):
                x = try block(x)
            case .upsampleConv(let conv):
                x = try conv(x)
            }
        }
        return x
    }

    public func encodeLatents(_ image: Tensor) throws -> LatentEncoding {
        defer { Allocator.releaseWorkBuffers() }
        var x = image
        for i in x.data.indices { x.data[i] = (x.data[i] + 1) / 2 }
        return .latents(try Self.run(encoder, x))
    }

    public func decode(_ latent: Tensor) throws -> Tensor {
        defer { Allocator.releaseWorkBuffers() }
        var x = latent
        // DecoderTiny's clamp is fixed at ±3 (latent_magnitude only scales latents stored as bytes).
        for i in x.data.indices { x.data[i] = tanhf(x.data[i] / 3) * 3 }
        var y = try Self.run(decoder, x)
        for i in y.data.indices { y.data[i] = y.data[i] * 2 - 1 }
        return y
    }
}
