import ChiselCore
import Foundation

/// Small stages for exercising the graph machinery without image files.
enum SolidStage: Stage {
    enum Kind: String, ParamChoice { case plain, fancy }

    static let image = Output<Image>("image", "The image.")
    static let width = Param<Int>("width", default: 4, range: 1...4096, "Width.")
    static let height = Param<Int>("height", default: 4, range: 1...4096, "Height.")
    static let value = Param<Double>("value", default: 0.5, range: 0...1, "Gray level.")
    static let label = Param<String>("label", default: "", "Free text.")
    static let kind = Param<Kind>("kind", default: .plain, "A choice.")
    static let flag = Param<Bool>("flag", default: false, "A flag.")

    static let schema = StageSchema(
        "solid", "A solid gray image.", outputs: [image], params: [width, height, value, label, kind, flag])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        [image(try Image(width: call[width], height: call[height], layout: .gray, filledWith: Float(call[value])))]
    }
}

enum AddStage: Stage {
    static let image = Input<Image>("image", "In.")
    static let sum = Output<Image>("image", "Out.")
    static let amount = Param<Double>("amount", default: 0.1, range: -1...1, "Amount.")

    static let schema = StageSchema(
        "add", "Adds a constant to every sample.", inputs: [image], outputs: [sum], params: [amount])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        var image = try call[Self.image]
        let amount = Float(try call[Self.amount])
        image.pixels = image.pixels.map { $0 + amount }
        return [sum(image)]
    }
}

enum SumStage: Stage {
    static let a = Input<Image>("a", "First.")
    static let b = OptionalInput<Image>("b", "Second.")
    static let sum = Output<Image>("image", "Sum.")
    static let mask = Output<Mask>("mask", requires: b, "Where b is above 0.5.")

    static let schema = StageSchema(
        "sum", "Adds two images; the second is optional.", inputs: [a, b], outputs: [sum, mask])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        var a = try call[Self.a]
        guard let b = try call[Self.b] else { return [sum(a)] }
        a.pixels = zip(a.pixels, b.pixels).map(+)
        return [sum(a), mask(try Mask(width: b.width, height: b.height, values: b.pixels.map { $0 > 0.5 ? 1 : 0 }))]
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
    static let image = OptionalInput<Image>("image", "In.")
    static let passed = Output<Image>("image", "Out.")
    static let millis = Param<Int>("millis", default: 50, range: 0...10000, "Pause.")

    static let schema = StageSchema(
        "slow", "Passes its optional input through after a pause.", inputs: [image], outputs: [passed], params: [millis])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        log.enter(call.node)
        defer { log.leave() }
        try await Task.sleep(nanoseconds: UInt64(try call[millis]) * 1_000_000)
        return [passed(try call[image] ?? Image(width: 2, height: 2, layout: .gray, filledWith: 0))]
    }
}

enum FailStage: Stage {
    static let schema = StageSchema(
        "fail", "Always fails.",
        inputs: [OptionalInput<Image>("image", "In.")], outputs: [Output<Image>("image", "Never produced.")])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        throw call.failure("this stage always fails")
    }
}

enum FileReaderStage: Stage {
    static let image = Output<Image>("image", "The image.")
    static let path = Param<String>.path("path", role: .input, "A file.")

    static let schema = StageSchema(
        "reader", "Pretends to read a file.", outputs: [image], params: [path], receivesFiles: (.image, path))

    static func run(_ call: StageCall) async throws -> StageOutputs {
        [image(try Image(width: 2, height: 2, layout: .gray, filledWith: 1, origin: ImageOrigin(path: try call[path])))]
    }
}

enum FileWriterStage: Stage {
    static let path = Param<String>.path("path", role: .output, default: "{stem}.out", "Output template.")

    static let schema = StageSchema(
        "writer", "Pretends to write a file.", inputs: [Input<Image>("image", "In.")], params: [path])

    static func plannedOutputFiles(_ call: StageCall) throws -> [String] {
        [try PathTemplate(call[path]).expand(run: call.context.run, node: call.node, origin: nil)]
    }

    static func run(_ call: StageCall) async throws -> StageOutputs { [] }
}

enum MaskCoverageStage: Stage {
    static let mask = Input<Mask>("mask", "A mask.")
    static let image = Output<Image>("image", "A 1×1 image of the mask's coverage.")

    static let schema = StageSchema("coverage", "Takes a mask.", inputs: [mask], outputs: [image])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        [image(try Image(width: 1, height: 1, layout: .gray, filledWith: Float(call[mask].coverage)))]
    }
}

enum ModelUserStage: Stage {
    static let image = Output<Image>("image", "Out.")

    static let schema = StageSchema(
        "uses_model", "Needs a model.", inputs: [ModelInput("model", "A model.")], outputs: [image])

    static func run(_ call: StageCall) async throws -> StageOutputs {
        [image(try Image(width: 1, height: 1, layout: .gray, filledWith: 0))]
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
