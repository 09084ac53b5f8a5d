/// What a stage's `validate` sees of a node before anything runs: its typed parameters and
/// where each input comes from. Problems it reports carry the node and the JSON path of the
/// parameter or input they concern, like every other validation error.
public struct StageCheck: ParamReading, Sendable {
    /// Where a connected input comes from, as far as it is known before running.
    public enum Source: Sendable, Equatable {
        /// Output `port` of node `node`, a `stage` node.
        case node(String, stage: String, port: String)
        /// A model of the graph's `models` section.
        case model(ModelSpec)
    }

    public struct Problem: Sendable, Equatable {
        public var message: String
        /// The parameter or input the problem concerns, or nil for the node as a whole.
        public var param: String?
        public var input: String?
        public var code: ChiselError.Code
    }

    public let node: String
    public let params: [String: ParamValue]
    public let sources: [String: Source]
    public private(set) var problems: [Problem] = []
    /// What the graph asks that has no effect with its model or inputs: reported, not refused.
    public private(set) var warnings: [Problem] = []

    /// Where every node's inputs come from, by node id: what a stage follows upstream (denoise
    /// reads which ControlNets its control chain holds).
    public let graphSources: [String: [String: Source]]

    public init(node: String, params: [String: ParamValue], sources: [String: Source], graphSources: [String: [String: Source]] = [:]) {
        self.node = node
        self.params = params
        self.sources = sources
        self.graphSources = graphSources
    }

    public func isConnected(_ input: some InputKey) -> Bool { sources[input.spec.name] != nil }

    public func source(of input: some InputKey) -> Source? { sources[input.spec.name] }

    /// Reports a problem with a parameter, e.g. a rule between several of them.
    public mutating func reject(_ param: some ParamKey, _ message: String, code: ChiselError.Code = .invalidParameter) {
        problems.append(Problem(message: message, param: param.spec.name, input: nil, code: code))
    }

    /// Reports a problem with an input, e.g. one a parameter's value needs connected.
    public mutating func reject(input: some InputKey, _ message: String, code: ChiselError.Code = .invalidGraph) {
        problems.append(Problem(message: message, param: nil, input: input.spec.name, code: code))
    }

    /// Warns that a parameter has no effect here (the graph still runs).
    public mutating func warn(_ param: some ParamKey, _ message: String) {
        warnings.append(Problem(message: message, param: param.spec.name, input: nil, code: .invalidParameter))
    }

    /// Warns that a connected input has no effect here.
    public mutating func warn(input: some InputKey, _ message: String) {
        warnings.append(Problem(message: message, param: nil, input: input.spec.name, code: .invalidGraph))
    }

    /// Reports a problem with the node as a whole.
    public mutating func reject(_ message: String, code: ChiselError.Code = .invalidParameter) {
        problems.append(Problem(message: message, param: nil, input: nil, code: code))
    }
}
