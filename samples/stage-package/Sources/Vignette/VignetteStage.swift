import ChiselCore

/// Darkens an image towards its corners.
public enum VignetteStage: Stage {
    public static let image = Input<Image>("image", "The image to darken.")
    public static let darkened = Output<Image>("image", "The darkened image.")
    public static let strength = Param<Double>("strength", default: 0.5, range: 0...1, "How dark the corners get.")
    public static let radius = Param<Double>("radius", default: 1, range: 0.1...4,
                                             "Where the darkening reaches full strength, as a fraction of the half-diagonal.")

    public static let schema = StageSchema(
        "vignette", "Darken an image towards its corners.",
        inputs: [image], outputs: [darkened], params: [strength, radius])

    /// A rule between parameters, reported by `validate` before anything runs.
    public static func validate(_ check: inout StageCheck) throws {
        if try check[strength] > 0, try check[radius] < 0.25 {
            check.reject(radius, "a radius under 0.25 with a nonzero strength blacks out most of the image")
        }
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        var image = try call[Self.image]
        let strength = Float(try call[Self.strength])
        let radius = Float(try call[Self.radius])
        let cx = Float(image.width - 1) / 2, cy = Float(image.height - 1) / 2
        let reach = max((cx * cx + cy * cy).squareRoot() * radius, 1)
        for c in 0..<image.layout.colorChannels {  // leave alpha alone
            for y in 0..<image.height {
                for x in 0..<image.width {
                    let dx = Float(x) - cx, dy = Float(y) - cy
                    let falloff = max(0, 1 - strength * min(1, (dx * dx + dy * dy).squareRoot() / reach))
                    image.pixels[(c * image.height + y) * image.width + x] *= falloff
                }
            }
        }
        return [darkened(image)]
    }
}

/// The target's registration entry point.
public enum Vignette {
    public static func register(in registry: inout StageRegistry) throws {
        try registry.register(VignetteStage.self)
    }
}
