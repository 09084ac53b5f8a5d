import ChiselCore
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
