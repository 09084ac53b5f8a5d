import ChiselBase
import ChiselTensor
import Foundation

/// diffusers' `T2IAdapter` config: the adapter's kind, its feature widths and its first
/// downscale (a pixel unshuffle).
public struct T2IAdapterConfig: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case full = "full_adapter", fullXL = "full_adapter_xl", light = "light_adapter"
    }

    public var kind: Kind
    public var inChannels: Int
    public var channels: [Int]
    public var resBlocks: Int
    /// The pixel unshuffle's factor: the first feature is the image / this.
    public var downscaleFactor: Int

    public init(reader r: ConfigReader) throws {
        if r.has("_class_name") {
            let name = try r.string("_class_name")
            guard name == "T2IAdapter" else { throw r.failure("_class_name", "is '\(name)'; Chisel reads T2IAdapter") }
        }
        let type = try r.string("adapter_type", default: "full_adapter")
        guard let kind = Kind(rawValue: type) else {
            throw r.failure("adapter_type", "'\(type)' is not full_adapter, full_adapter_xl or light_adapter")
        }
        self.kind = kind
        inChannels = try r.size("in_channels", default: 3)
        channels = try r.sizes("channels", default: [320, 640, 1280, 1280])
        resBlocks = try r.size("num_res_blocks", default: 2)
        downscaleFactor = try r.size("downscale_factor", default: 8)
        guard !channels.isEmpty, resBlocks > 0 else { throw r.failure("channels", "needs at least one entry and num_res_blocks ≥ 1") }
        if kind == .fullXL {
            guard channels.count == 4, channels[2] == channels[3] else {
                throw r.failure("channels", "of a full_adapter_xl are four widths, the last two equal")
            }
        }
        if kind == .light, channels.contains(where: { $0 % 4 != 0 }) {
            throw r.failure("channels", "of a light_adapter must be multiples of 4")
        }
    }

    /// Each feature's width and how many pixels of the control image one of its cells covers.
    public var features: [(channels: Int, downscale: Int)] {
        switch kind {
        case .full:
            return channels.enumerated().map { ($1, downscaleFactor << $0) }
        case .fullXL:
            return [(channels[0], downscaleFactor), (channels[1], downscaleFactor), (channels[2], downscaleFactor * 2),
                    (channels[3], downscaleFactor * 2)]
        case .light:
            return channels.enumerated().map { ($1, downscaleFactor << $0) } + [(channels[channels.count - 1], downscaleFactor << channels.count)]
        }
    }
}

/// diffusers' `T2IAdapter` (Mou et al. 2023; full, XL and light): a small convolutional network
/// that turns a control image into one feature map per UNet level, computed once per edit and
/// added inside the UNet's down blocks at every step.
public final class T2IAdapter: Sendable {
    public let config: T2IAdapterConfig
    let convIn: Conv2D?
    let blocks: [Block]

    final class Block: Sendable {
        let down: Bool
        let inConv: Conv2D?
        /// Each ResNet's two convolutions (ReLU between, the input added back).
        let resnets: [(Conv2D, Conv2D)]
        let outConv: Conv2D?

        init(down: Bool, inConv: Conv2D?, resnets: [(Conv2D, Conv2D)], outConv: Conv2D?) {
            self.down = down
            self.inConv = inConv
            self.resnets = resnets
            self.outConv = outConv
        }
    }

    public init(config: T2IAdapterConfig, weights: any WeightStore, precision: Precision = .f32) throws {
        self.config = config
        let unshuffled = config.inChannels * config.downscaleFactor * config.downscaleFactor
        let c = config.channels
        func full(_ i: Int, from: Int, to: Int, down: Bool) throws -> Block {
            let w = weights.scoped("adapter.body.\(i).")
            return Block(down: down,
                         inConv: from == to ? nil : try Load.conv(w, "in_conv", in: from, out: to, kernel: 1, precision: precision),
                         resnets: try (0..<config.resBlocks).map { j in
                             (try Load.conv(w, "resnets.\(j).block1", in: to, out: to, kernel: 3, padding: 1, precision: precision),
                              try Load.conv(w, "resnets.\(j).block2", in: to, out: to, kernel: 1, precision: precision))
                         }, outConv: nil)
        }
        func light(_ i: Int, from: Int, to: Int, down: Bool) throws -> Block {
            let w = weights.scoped("adapter.body.\(i).")
            let mid = to / 4
            return Block(down: down, inConv: try Load.conv(w, "in_conv", in: from, out: mid, kernel: 1, precision: precision),
                         resnets: try (0..<config.resBlocks).map { j in
                             (try Load.conv(w, "resnets.\(j).block1", in: mid, out: mid, kernel: 3, padding: 1, precision: precision),
                              try Load.conv(w, "resnets.\(j).block2", in: mid, out: mid, kernel: 3, padding: 1, precision: precision))
                         }, outConv: try Load.conv(w, "out_conv", in: mid, out: to, kernel: 1, precision: precision))
        }
        switch config.kind {
        case .full:
            convIn = try Load.conv(weights, "adapter.conv_in", in: unshuffled, out: c[0], kernel: 3, padding: 1, precision: precision)
            blocks = try [full(0, from: c[0], to: c[0], down: false)]
                + (1..<c.count).map { try full($0, from: c[$0 - 1], to: c[$0], down: true) }
        case .fullXL:
            convIn = try Load.conv(weights, "adapter.conv_in", in: unshuffled, out: c[0], kernel: 3, padding: 1, precision: precision)
            blocks = [try full(0, from: c[0], to: c[0], down: false), try full(1, from: c[0], to: c[1], down: false),
                      try full(2, from: c[1], to: c[2], down: true), try full(3, from: c[3], to: c[3], down: false)]
        case .light:
            convIn = nil
            blocks = try [light(0, from: unshuffled, to: c[0], down: false)]
                + (0..<(c.count - 1)).map { try light($0 + 1, from: c[$0], to: c[$0 + 1], down: true) }
                + [light(c.count, from: c[c.count - 1], to: c[c.count - 1], down: true)]
        }
    }

    /// The features for `image` (N×H×W×in_channels, channels-last, in [0, 1]; H and W multiples
    /// of the downscale factor), channels-last.
    public func callAsFunction(_ image: Tensor) throws -> [Tensor] {
        defer { Allocator.releaseWorkBuffers() }
        let r = config.downscaleFactor
        guard image.rank == 4, image.shape[3] == config.inChannels, image.shape[1] % r == 0, image.shape[2] % r == 0 else {
            throw ChiselError(.invalidParameter, "the T2I-Adapter takes N×H×W×\(config.inChannels) images with sides that are multiples of \(r), got \(image.shape)")
        }
        var x = Self.pixelUnshuffle(image, r)
        if let convIn { x = try convIn(x) }
        var features: [Tensor] = []
        for block in blocks {
            if block.down { x = Self.averagePool(x) }
            if let inConv = block.inConv { x = try inConv(x) }
            for (first, second) in block.resnets {
                var h = try first(x)
                for i in h.data.indices where h.data[i] < 0 { h.data[i] = 0 }
                x = try second(h, adding: x)
            }
            if let outConv = block.outConv { x = try outConv(x) }
            features.append(x)
        }
        return features
    }

    /// PyTorch's `PixelUnshuffle(r)` in channels-last: output channel c·r² + dy·r + dx.
    static func pixelUnshuffle(_ x: Tensor, _ r: Int) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow, oc) = (h / r, w / r, c * r * r)
        var out = Tensor(zeros: [n, oh, ow, oc])
        for b in 0..<n {
            for y in 0..<oh {
                for xx in 0..<ow {
                    let base = ((b * oh + y) * ow + xx) * oc
                    for k in 0..<c {
                        for dy in 0..<r {
                            for dx in 0..<r {
                                out.data[base + k * r * r + dy * r + dx] = x.data[((b * h + y * r + dy) * w + xx * r + dx) * c + k]
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `AvgPool2d(2, stride 2, ceil_mode=True)`: a window cut by the edge averages what it holds.
    static func averagePool(_ x: Tensor) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = ((h + 1) / 2, (w + 1) / 2)
        var out = Tensor(zeros: [n, oh, ow, c])
        for b in 0..<n {
            for y in 0..<oh {
                for xx in 0..<ow {
                    let rows = min(2, h - 2 * y), cols = min(2, w - 2 * xx)
                    let scale = 1 / Float(rows * cols)
                    for k in 0..<c {
                        var sum: Float = 0
                        for dy in 0..<rows {
                            for dx in 0..<cols { sum += x.data[((b * h + 2 * y + dy) * w + 2 * xx + dx) * c + k] }
                        }
                        out.data[((b * oh + y) * ow + xx) * c + k] = sum * scale
                    }
                }
            }
        }
        return out
    }
}
