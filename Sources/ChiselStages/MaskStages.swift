import ChiselCore

/// Grows (or, with negative pixels, shrinks) a mask by a disk.
public enum GrowMaskStage: Stage {
    public static let mask = Input<Mask>("mask", "The mask to grow or shrink.")
    public static let grown = Output<Mask>("mask", "The grown or shrunk mask.")
    public static let pixels = Param<Int>("pixels", default: 8, range: -1024...1024, "Distance to grow by; negative shrinks.")

    public static let schema = StageSchema(
        "grow_mask", "Grow a mask by N pixels (negative N shrinks it), with round corners.",
        inputs: [mask], outputs: [grown], params: [pixels])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        var mask = try call[Self.mask]
        let pixels = try call[Self.pixels]
        mask.values = pixels >= 0
            ? Morphology.dilate(mask.values, width: mask.width, height: mask.height, radius: pixels)
            : Morphology.erode(mask.values, width: mask.width, height: mask.height, radius: -pixels)
        return [grown(mask)]
    }
}

/// Softens a mask's edges with a Gaussian blur.
public enum FeatherMaskStage: Stage {
    public enum Mode: String, ParamChoice {
        /// The blurred mask, never above the given one: pixels where the mask is 0 stay 0, so a
        /// paste through it keeps them exact; the edge fades inward.
        case inside
        /// The plain blur, which reaches past the mask's edge (AUTOMATIC1111's mask blur).
        case outward
    }

    public static let mask = Input<Mask>("mask", "The mask to feather.")
    public static let feathered = Output<Mask>("mask", "The feathered mask.")
    public static let radius = Param<Double>("radius", default: 4, range: 0...512,
                                             "Blur standard deviation in pixels; 0 leaves the mask as is.")
    public static let mode = Param<Mode>("mode", default: .inside,
                                         "inside: the blur never exceeds the mask (0 stays 0); outward: the plain blur, past the edge (AUTOMATIC1111).")

    public static let schema = StageSchema(
        "feather_mask", "Soften a mask's edges with a Gaussian blur (standard deviation, as PIL), inside the mask or outward.",
        inputs: [mask], outputs: [feathered], params: [radius, mode])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        var mask = try call[Self.mask]
        let blurred = GaussianBlur.blur(mask.values, planes: 1, width: mask.width, height: mask.height, sigma: try call[radius])
        switch try call[mode] {
        case .inside: mask.values = zip(mask.values, blurred).map { min($0, $1) }
        case .outward: mask.values = blurred
        }
        return [feathered(mask)]
    }
}

/// Swaps the edit and keep areas of a mask.
public enum InvertMaskStage: Stage {
    public static let mask = Input<Mask>("mask", "The mask to invert.")
    public static let inverted = Output<Mask>("mask", "The inverted mask.")

    public static let schema = StageSchema("invert_mask", "Invert a mask: 1 − value.", inputs: [mask], outputs: [inverted])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        var mask = try call[Self.mask]
        mask.values = mask.values.map { 1 - $0 }
        return [inverted(mask)]
    }
}

/// Combines two masks of the same size value by value.
public enum CombineMasksStage: Stage {
    public enum Operation: String, ParamChoice {
        case union, intersect, subtract, add, multiply, difference

        func apply(_ a: Float, _ b: Float) -> Float {
            switch self {
            case .union: max(a, b)
            case .intersect: min(a, b)
            case .subtract: max(0, a - b)
            case .add: min(1, a + b)
            case .multiply: a * b
            case .difference: abs(a - b)
            }
        }
    }

    public static let a = Input<Mask>("a", "The first mask.")
    public static let b = Input<Mask>("b", "The second mask, the same size.")
    public static let combined = Output<Mask>("mask", "The combined mask.")
    public static let operation = Param<Operation>(
        "operation", default: .union,
        "How values combine: union max(a,b), intersect min(a,b), subtract max(0,a−b), add min(1,a+b), multiply a·b, difference |a−b|.")

    public static let schema = StageSchema(
        "combine_masks", "Combine two masks: union (max), intersect (min), subtract, add, multiply or difference.",
        inputs: [a, b], outputs: [combined], params: [operation])

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        var a = try call[Self.a]
        let b = try call[Self.b]
        guard a.width == b.width, a.height == b.height else {
            throw call.failure("mask a is \(a.width)×\(a.height) but mask b is \(b.width)×\(b.height)")
        }
        let operation = try call[Self.operation]
        a.values = zip(a.values, b.values).map { operation.apply($0, $1) }
        return [combined(a)]
    }
}
