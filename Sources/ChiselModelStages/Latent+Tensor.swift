import ChiselCore
import ChiselDiffusion
import ChiselTensor

/// The one conversion between the wire's `Latent` (N×C×H×W, PyTorch's layout, which the
/// reference fixtures and schedulers use) and the networks' channels-last `Tensor` (N×H×W×C).
extension Latent {
    /// The latent's values as an N×H×W×C tensor for the VAE decoder or the UNet.
    public func channelsLast() throws -> Tensor {
        try Tensor.fromNCHW(values, n: batch, c: channels, h: height, w: width)
    }

    /// A latent from an N×H×W×C network output, with the noise state and origin it should carry.
    public init(channelsLast tensor: Tensor, noise: (any LatentNoise)? = nil, origin: ImageOrigin? = nil) throws {
        guard tensor.rank == 4 else {
            throw ChiselError(.internal, "a latent tensor must be N×H×W×C, got shape \(tensor.shape)")
        }
        let (n, h, w, c) = (tensor.shape[0], tensor.shape[1], tensor.shape[2], tensor.shape[3])
        try self.init(shape: [n, c, h, w], values: tensor.toNCHW(), noise: noise, origin: origin)
    }
}

/// A latent's N×C×H×W shape, and its values moved between PyTorch's channels-first order (the
/// wire's) and the networks' channels-last one.
struct LatentLayout: Sendable {
    let n: Int, c: Int, h: Int, w: Int

    init(_ latent: Latent) {
        (n, c, h, w) = (latent.batch, latent.channels, latent.height, latent.width)
    }

    var count: Int { n * c * h * w }

    /// N×H×W×C, the batch repeated `repeats` times (a guided pair).
    func channelsLastShape(repeats: Int = 1) -> [Int] { [repeats * n, h, w, c] }

    /// N×C×H×W values in N×H×W×C order.
    func channelsLast(_ values: [Float]) -> [Float] {
        guard values.count == count else { return values }
        var out = [Float](repeating: 0, count: count)
        let plane = h * w
        for b in 0..<n {
            for ch in 0..<c {
                let source = (b * c + ch) * plane
                for p in 0..<plane { out[(b * plane + p) * c + ch] = values[source + p] }
            }
        }
        return out
    }

    /// N×H×W×C values in N×C×H×W order.
    func channelsFirst(_ values: [Float]) -> [Float] {
        guard values.count == count else { return values }
        var out = [Float](repeating: 0, count: count)
        let plane = h * w
        for b in 0..<n {
            for ch in 0..<c {
                let target = (b * c + ch) * plane
                for p in 0..<plane { out[target + p] = values[(b * plane + p) * c + ch] }
            }
        }
        return out
    }
}

/// A stream's draws laid out channels-last: a draw of a whole latent's count is made in PyTorch's
/// N×C×H×W order and moved, so a loop that keeps its latent channels-last gives every element the
/// number diffusers' loop gives it. The stream advances exactly as it would undisturbed.
struct ChannelsLastDraws<Source: NoiseSource>: NoiseSource {
    var source: Source
    let layout: LatentLayout

    mutating func normal(count: Int) -> [Float] { layout.channelsLast(source.normal(count: count)) }
    mutating func uniform(count: Int) -> [Float] { layout.channelsLast(source.uniform(count: count)) }
}
