import ChiselCore
import Foundation

/// Small stages for exercising the graph machinery without image files.
enum SolidStage: Stage {
    static let schema = StageSchema(
        "solid", "A solid gray image.",
        outputs: [.image("image", "The image.")],
        params: [
            .int("width", default: 4, range: 1...4096, "Width."),
            .int("height", default: 4, range: 1...4096, "Height."),
            .float("value", default: 0.5, range: 0...1, "Gray level."),
            .string("label", default: "", "Free text."),
            .choice("kind", ["plain", "fancy"], default: "plain", "A choice."),
            .bool("flag", default: false, "A flag."),
        ])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        let image = try Image(width: call.int("width"), height: call.int("height"), layout: .gray,
                              filledWith: Float(call.double("value")))
        return ["image": .image(image)]
    }
}

enum AddStage: Stage {
    static let schema = StageSchema(
        "add", "Adds a constant to every sample.",
        inputs: [.image("image", "In.")],
        outputs: [.image("image", "Out.")],
        params: [.float("amount", default: 0.1, range: -1...1, "Amount.")])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        var image = try call.image("image")
        let amount = Float(try call.double("amount"))
        image.pixels = image.pixels.map { $0 + amount }
        return ["image": .image(image)]
    }
}

enum SumStage: Stage {
    static let schema = StageSchema(
        "sum", "Adds two images; the second is optional.",
        inputs: [.image("a", "First."), .image("b", optional: true, "Second.")],
        outputs: [.image("image", "Sum."), .mask("mask", requires: "b", "Where b is above 0.5.")])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        var a = try call.image("a")
        guard let b = try call.optionalImage("b") else { return ["image": .image(a)] }
        a.pixels = zip(a.pixels, b.pixels).map(+)
        let mask = try Mask(width: b.width, height: b.height, values: b.pixels.map { $0 > 0.5 ? 1 : 0 })
        return ["image": .image(a), "mask": .mask(mask)]
    }
}

/// Records the order nodes run in and how many run at once.
final class RunLog: @unchecked Sendable {
    let lock = NSLock()
    var order: [String] = []
    var running = 0
    var peak = 0

    func enter(_ node: String) {
        lock.lock(); defer { lock.unlock() }
        order.append(node)
        running += 1
        peak = max(peak, running)
    }

    func leave() {
        lock.lock(); defer { lock.unlock() }
        running -= 1
    }
}

enum SlowStage: Stage {
    nonisolated(unsafe) static var log = RunLog()
    static let schema = StageSchema(
        "slow", "Passes its optional input through after a pause.",
        inputs: [.image("image", optional: true, "In.")],
        outputs: [.image("image", "Out.")],
        params: [.int("millis", default: 50, range: 0...10000, "Pause.")])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        log.enter(call.node)
        defer { log.leave() }
        try await Task.sleep(nanoseconds: UInt64(try call.int("millis")) * 1_000_000)
        let image = try call.optionalImage("image") ?? Image(width: 2, height: 2, layout: .gray, filledWith: 0)
        return ["image": .image(image)]
    }
}

enum FailStage: Stage {
    static let schema = StageSchema(
        "fail", "Always fails.",
        inputs: [.image("image", optional: true, "In.")],
        outputs: [.image("image", "Never produced.")])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        throw call.failure("this stage always fails")
    }
}

enum FileReaderStage: Stage {
    static let schema = StageSchema(
        "reader", "Pretends to read a file.",
        outputs: [.image("image", "The image.")],
        params: [.path("path", role: .input, "A file.")],
        receivesFiles: (.image, "path"))

    static func run(_ call: StageCall) async throws -> [String: Value] {
        ["image": .image(try Image(width: 2, height: 2, layout: .gray, filledWith: 1,
                                   origin: ImageOrigin(path: try call.string("path"))))]
    }
}

enum FileWriterStage: Stage {
    static let schema = StageSchema(
        "writer", "Pretends to write a file.",
        inputs: [.image("image", "In.")],
        params: [.path("path", role: .output, default: "{stem}.out", "Output template.")])

    static func plannedOutputFiles(_ call: StageCall) throws -> [String] {
        [try PathTemplate(call.string("path")).expand(run: call.context.run, node: call.node, origin: nil)]
    }

    static func run(_ call: StageCall) async throws -> [String: Value] { [:] }
}

enum MaskCoverageStage: Stage {
    static let schema = StageSchema(
        "coverage", "Takes a mask.",
        inputs: [.mask("mask", "A mask.")],
        outputs: [.image("image", "A 1×1 image of the mask's coverage.")])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        ["image": .image(try Image(width: 1, height: 1, layout: .gray, filledWith: Float(call.mask("mask").coverage)))]
    }
}

enum ModelUserStage: Stage {
    static let schema = StageSchema(
        "uses_model", "Needs a model.",
        inputs: [.model("model", "A model.")],
        outputs: [.image("image", "Out.")])

    static func run(_ call: StageCall) async throws -> [String: Value] {
        ["image": .image(try Image(width: 1, height: 1, layout: .gray, filledWith: 0))]
    }
}

func testRegistry() throws -> StageRegistry {
    var registry = StageRegistry()
    try registry.register([SolidStage.self, AddStage.self, SumStage.self, SlowStage.self, FailStage.self,
                           FileReaderStage.self, FileWriterStage.self, ModelUserStage.self, MaskCoverageStage.self])
    return registry
}

/// Compiles graph text, throwing the compiler's errors.
func compile(_ text: String, options: GraphOptions? = nil, registry: StageRegistry? = nil) throws -> Plan {
    let json = try JSONParser.parse(text, file: "test.json")
    return try GraphCompiler.compile(json, file: "test.json", directory: "/graphs",
                                     registry: registry ?? testRegistry(),
                                     options: options ?? GraphOptions(workingDirectory: "/cwd"))
}

/// The compiler's errors for graph text (empty when it is valid).
func problems(_ text: String, options: GraphOptions? = nil, registry: StageRegistry? = nil) -> [ChiselError] {
    do {
        _ = try compile(text, options: options, registry: registry)
        return []
    } catch let errors as ChiselErrors {
        return errors.errors
    } catch let error as ChiselError {
        return [error]
    } catch {
        return [ChiselError(.internal, "\(error)")]
    }
}
