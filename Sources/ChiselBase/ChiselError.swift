/// The one error type of Chisel: what went wrong, where, and why.
///
/// `where` is any of a file, a graph node, a JSON path inside the graph and a tensor name;
/// the CLI prints one line per error from `description`.
public struct ChiselError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// The graph file is not valid JSON or not a valid graph.
        case invalidGraph = "invalid_graph"
        /// A parameter value is unknown, missing, mistyped or out of range.
        case invalidParameter = "invalid_parameter"
        /// An image file cannot be decoded (truncated, corrupt, not an image).
        case invalidImage = "invalid_image"
        /// A format or a feature of a format that Chisel does not handle.
        case unsupportedFormat = "unsupported_format"
        /// An image larger than the pixel limit.
        case imageTooLarge = "image_too_large"
        /// A file system error: missing file, permission, disk full.
        case io
        /// A stage failed while running.
        case stageFailed = "stage_failed"
        /// A model could not be loaded or used.
        case model
        /// A command-line argument is wrong.
        case invalidArgument = "invalid_argument"
        /// An inconsistency inside Chisel itself; a bug to report.
        case `internal`
    }

    public var code: Code
    public var message: String
    public var file: String?
    public var node: String?
    public var jsonPath: String?
    public var tensor: String?
    /// A description of the lower-level error that caused this one, if any.
    public var cause: String?

    public init(
        _ code: Code, _ message: String, file: String? = nil, node: String? = nil,
        jsonPath: String? = nil, tensor: String? = nil, cause: String? = nil
    ) {
        self.code = code
        self.message = message
        self.file = file
        self.node = node
        self.jsonPath = jsonPath
        self.tensor = tensor
        self.cause = cause
    }

    /// `file: node 'id' (json.path): tensor 'name': message (cause)`, leaving out what is unknown.
    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let node {
            if let jsonPath { parts.append("node '\(node)' (\(jsonPath))") } else { parts.append("node '\(node)'") }
        } else if let jsonPath {
            parts.append(jsonPath)
        }
        if let tensor { parts.append("tensor '\(tensor)'") }
        var text = parts.joined(separator: ": ")
        if !text.isEmpty { text += ": " }
        text += message
        if let cause, !cause.isEmpty { text += " (\(cause))" }
        return text
    }

    /// The same error with a file, node or path filled in where it was not known yet.
    public func located(file: String? = nil, node: String? = nil, jsonPath: String? = nil) -> ChiselError {
        var copy = self
        if copy.file == nil { copy.file = file }
        if copy.node == nil { copy.node = node }
        if copy.jsonPath == nil { copy.jsonPath = jsonPath }
        return copy
    }

    /// Wraps any error as a `ChiselError`, keeping it as is when it already is one.
    public static func wrapping(_ error: any Error, code: Code = .stageFailed, file: String? = nil) -> ChiselError {
        if let chisel = error as? ChiselError { return chisel.located(file: file) }
        return ChiselError(code, "\(error)", file: file)
    }
}

/// Several problems found at once, such as every validation error of a graph.
public struct ChiselErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ChiselError]

    public init(_ errors: [ChiselError]) { self.errors = errors }

    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
