/// A loaded model, shared by every stage that names it and loaded once per run or batch.
///
/// Model modules conform their pipelines to this protocol; stages cast the handle to the
/// concrete type they need and report a clear error when it is another kind.
public protocol LoadedModel: AnyObject, Sendable {
    /// The model's kind, e.g. `stable_diffusion`, matching the loader that made it.
    var kind: String { get }
    /// A one-line summary for logs: family, variant, dtype.
    var summary: String { get }
}

/// A model declared in a graph's `models` section.
public struct ModelSpec: Sendable, Equatable {
    /// The name nodes use to refer to it.
    public var name: String
    /// The absolute path of the checkpoint file or folder.
    public var path: String
    /// The loader kind; nil lets the loaders recognise the checkpoint.
    public var kind: String?
    /// Every other key of the entry (dtype and loader options), typed as written.
    public var options: [String: JSONValue]

    public init(name: String, path: String, kind: String? = nil, options: [String: JSONValue] = [:]) {
        self.name = name
        self.path = path
        self.kind = kind
        self.options = options
    }
}

/// Turns a `ModelSpec` into a loaded model. Model modules register one per kind.
public protocol ModelLoader: Sendable {
    /// The kind this loader makes, e.g. `stable_diffusion`.
    var kind: String { get }
    /// Whether this loader recognises the checkpoint at `path` (used when a spec names no kind).
    func recognizes(path: String) -> Bool
    /// What is wrong with the spec's options (dtype, variant, …), found when the graph is
    /// validated; each problem names its option key.
    func problems(with spec: ModelSpec) -> [ModelOptionProblem]
    /// What validation should say about the spec without refusing it (values a single file
    /// cannot tell, assumed), one line each.
    func warnings(with spec: ModelSpec) -> [String]
    func load(_ spec: ModelSpec) async throws -> any LoadedModel
}

extension ModelLoader {
    public func problems(with spec: ModelSpec) -> [ModelOptionProblem] { [] }
    public func warnings(with spec: ModelSpec) -> [String] { [] }
}

/// A problem with one option of a model entry, reported at `models.NAME.KEY`.
public struct ModelOptionProblem: Sendable, Equatable {
    public var key: String
    public var message: String

    public init(key: String, message: String) {
        self.key = key
        self.message = message
    }
}

/// A model that ships with the program, named in a graph's models section as
/// `"path": "builtin:NAME"` (and by the commands when no `--model` is given).
public protocol BuiltinModel: Sendable {
    /// The name after `builtin:`.
    var name: String { get }
    /// One line on what it is, for listings and errors.
    var summary: String { get }
    /// The model's folder on this machine; throws, naming what is missing, when this build or
    /// installation does not carry it.
    func folder() throws -> String
}

/// Locations of the form `builtin:NAME`.
public enum BuiltinModelLocation {
    public static let scheme = "builtin:"

    /// NAME for `builtin:NAME`; nil for any other location.
    public static func name(in location: String) -> String? {
        location.hasPrefix(scheme) ? String(location.dropFirst(scheme.count)) : nil
    }
}
