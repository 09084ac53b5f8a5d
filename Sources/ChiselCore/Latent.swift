/// The noise level a latent carries: which schedule it sits on and where. The core knows no
/// scheduler; the diffusion stages put their `NoiseState` here and read it back.
public protocol LatentNoise: Sendable {
    /// A one-line description for logs and messages.
    var summary: String { get }
    /// Whether `other` is the same noise level (for `Latent`'s equality).
    func isSame(as other: any LatentNoise) -> Bool
}

extension LatentNoise where Self: Equatable {
    public func isSame(as other: any LatentNoise) -> Bool { (other as? Self) == self }
}

/// A latent tensor in N×C×H×W layout, with the noise state it carries.
///
/// A latent from a VAE encoder has `noise == nil` (clean); a partially noised latent records the
/// schedule position it sits at.
public struct Latent: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var values: [Float]
    public var noise: (any LatentNoise)?
    /// The image the latent was encoded from, for save-path templates further down.
    public var origin: ImageOrigin?

    public init(shape: [Int], values: [Float], noise: (any LatentNoise)? = nil, origin: ImageOrigin? = nil) throws {
        guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
            throw ChiselError(.internal, "a latent must be N×C×H×W with positive sizes, got \(shape)")
        }
        let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard count == values.count else {
            throw ChiselError(.internal, "latent of shape \(shape) needs \(count) values, got \(values.count)")
        }
        self.shape = shape
        self.values = values
        self.noise = noise
        self.origin = origin
    }

    public var batch: Int { shape[0] }
    public var channels: Int { shape[1] }
    public var height: Int { shape[2] }
    public var width: Int { shape[3] }

    public static func == (a: Latent, b: Latent) -> Bool {
        guard a.shape == b.shape, a.values == b.values, a.origin == b.origin else { return false }
        switch (a.noise, b.noise) {
        case (nil, nil): return true
        case let (x?, y?): return x.isSame(as: y)
        default: return false
        }
    }
}
