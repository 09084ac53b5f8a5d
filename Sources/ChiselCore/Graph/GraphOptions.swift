/// A `--set NODE.PARAM=VALUE` given on the command line.
public struct ParamOverride: Sendable, Equatable {
    public var node: String
    public var param: String
    public var value: JSONValue
    /// The argument as typed, for messages.
    public var argument: String

    public init(node: String, param: String, value: JSONValue, argument: String) {
        self.node = node
        self.param = param
        self.value = value
        self.argument = argument
    }

    /// Parses `NODE.PARAM=VALUE`. VALUE is read as JSON when it parses as JSON (numbers, true,
    /// false, quoted strings) and as a plain string otherwise, so `--set save.path=out/x.png` works.
    public static func parse(_ argument: String) throws -> ParamOverride {
        guard let equals = argument.firstIndex(of: "=") else {
            throw ChiselError(.invalidArgument, "--set \(argument): expected NODE.PARAM=VALUE")
        }
        let key = argument[..<equals]
        let text = String(argument[argument.index(after: equals)...])
        guard let dot = key.firstIndex(of: "."), dot != key.startIndex, key.index(after: dot) != key.endIndex else {
            throw ChiselError(.invalidArgument, "--set \(argument): expected NODE.PARAM=VALUE")
        }
        return ParamOverride(node: String(key[..<dot]), param: String(key[key.index(after: dot)...]),
                             value: parseLooseJSON(text), argument: argument)
    }
}

/// A scalar from the command line: JSON when it is a JSON scalar, a plain string otherwise.
public func parseLooseJSON(_ text: String) -> JSONValue {
    if let value = try? JSONParser.parse(text) {
        switch value {
        case .int, .uint, .double, .bool, .string, .null: return value
        default: break
        }
    }
    return .string(text)
}

/// How a graph is compiled for one kind of run.
public struct GraphOptions: Sendable {
    /// The folder relative paths from the command line resolve against.
    public var workingDirectory: String
    public var overrides: [ParamOverride]
    /// `--var NAME=VALUE`: values for the graph's variables.
    public var variables: [String: JSONValue]
    /// Set when the graph runs over a folder.
    public var batch: BatchBinding?
    /// Whether input files must exist at validation time.
    public var checkInputFiles: Bool
    /// Where output paths may go; nil: wherever the graph says (a graph the user wrote).
    public var outputs: OutputPolicy?
    /// `--model NAME=PATH`: a model's location instead of the one the graph gives.
    public var modelPaths: [String: String]

    public init(workingDirectory: String, overrides: [ParamOverride] = [], variables: [String: JSONValue] = [:],
                batch: BatchBinding? = nil, checkInputFiles: Bool = true, outputs: OutputPolicy? = nil,
                modelPaths: [String: String] = [:]) {
        self.workingDirectory = workingDirectory
        self.overrides = overrides
        self.variables = variables
        self.batch = batch
        self.checkInputFiles = checkInputFiles
        self.outputs = outputs
        self.modelPaths = modelPaths
    }

    /// The policy in force: the one given, or a batch's (outputs confined to its folder).
    var outputPolicy: OutputPolicy? {
        outputs ?? batch.map { OutputPolicy(root: $0.outputRoot, confined: !$0.allowOutsideOutput) }
    }
}

/// How a batch binds to a graph.
public struct BatchBinding: Sendable {
    /// The loader node that receives each image; nil picks the graph's `batch.image` or its only image loader.
    public var imageNode: String?
    /// The loader node that receives each mask; nil picks the graph's `batch.mask` or its only mask loader.
    public var maskNode: String?
    /// Whether masks are supplied (`--masks DIR`).
    public var withMasks: Bool
    /// The folder relative output paths resolve under.
    public var outputRoot: String
    /// Whether save paths may leave `outputRoot` (absolute paths, `..`): `--allow-outside-output`.
    public var allowOutsideOutput: Bool

    public init(imageNode: String? = nil, maskNode: String? = nil, withMasks: Bool = false, outputRoot: String,
                allowOutsideOutput: Bool = false) {
        self.imageNode = imageNode
        self.maskNode = maskNode
        self.withMasks = withMasks
        self.outputRoot = outputRoot
        self.allowOutsideOutput = allowOutsideOutput
    }
}
