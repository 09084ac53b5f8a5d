/// Which generator a seed drives: PyTorch's CPU generator (diffusers on the CPU, ComfyUI, and
/// AUTOMATIC1111's "CPU" setting) or AUTOMATIC1111's "NV" Philox generator, which reproduces
/// what CUDA's generator gives users of the web UI.
public enum RNGKind: String, Sendable, CaseIterable {
    case cpu
    /// AUTOMATIC1111's `NV` setting (`modules/rng_philox.py`).
    case cuda
}

/// The random stream of one edit, carried on the latents between stages so that separate
/// stages draw from it in the order one diffusers pipeline would: the VAE's latent sample, the
/// initial noise, then each ancestral or SDE step's noise.
public struct NoiseStream: NoiseSource, Sendable {
    public enum Generator: Sendable {
        case cpu(TorchGenerator)
        case philox(PhiloxGenerator)
    }

    public private(set) var generator: Generator
    /// The seed the stream started from, for metadata and messages.
    public let seed: UInt64
    public var kind: RNGKind {
        if case .cpu = generator { return .cpu }
        return .cuda
    }

    public init(seed: UInt64, kind: RNGKind = .cpu) {
        self.seed = seed
        switch kind {
        case .cpu: generator = .cpu(TorchGenerator(seed: seed))
        case .cuda: generator = .philox(PhiloxGenerator(seed: seed))
        }
    }

    public mutating func normal(count: Int) -> [Float] {
        switch generator {
        case .cpu(var g):
            let values = g.normal(count: count)
            generator = .cpu(g)
            return values
        case .philox(var g):
            let values = g.normal(count: count)
            generator = .philox(g)
            return values
        }
    }

    public mutating func uniform(count: Int) -> [Float] {
        switch generator {
        case .cpu(var g):
            let values = g.uniform(count: count)
            generator = .cpu(g)
            return values
        case .philox(var g):
            let values = g.uniform(count: count)
            generator = .philox(g)
            return values
        }
    }
}

extension NoiseStream {
    /// A stream that continues `generator` (a stage that drew from PyTorch's generator directly).
    public init(continuing generator: TorchGenerator, seed: UInt64) {
        self.seed = seed
        self.generator = .cpu(generator)
    }

    /// PyTorch's CPU generator this stream draws from; nil for AUTOMATIC1111's Philox stream.
    public var torchGenerator: TorchGenerator? {
        if case .cpu(let generator) = generator { return generator }
        return nil
    }
}
