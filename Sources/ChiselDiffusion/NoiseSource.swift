/// A stream of random numbers shared by every draw of one edit, in the order diffusers'
/// pipelines make them: the VAE's latent sample, the initial noise, then each ancestral or SDE
/// step's noise. Same seed and same order give the same image.
public protocol NoiseSource {
    /// `count` standard normal samples, as `torch.randn(count)` would draw them from this stream.
    mutating func normal(count: Int) -> [Float]
    /// `count` uniform samples in [0, 1), as `torch.rand(count)` would draw them.
    mutating func uniform(count: Int) -> [Float]
}
