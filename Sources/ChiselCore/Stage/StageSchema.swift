/// Which files a loader stage receives when a graph runs over a folder with `chisel batch`.
public enum FileRole: String, Sendable, Equatable {
    case image
    case mask
}

/// Everything a stage declares about itself, once: its name, ports and parameters.
public struct StageSchema: Sendable, Equatable {
    /// The name graphs use in `"stage": ...`; lower_snake_case.
    public var name: String
    /// One line saying what the stage does.
    public var doc: String
    public var inputs: [PortSpec]
    public var outputs: [PortSpec]
    public var params: [ParamSpec]
    /// For loaders: the role in a batch, and the path parameter that receives each file.
    public var receivesFiles: (role: FileRole, param: String)? {
        get { fileRole.map { ($0, fileParam) } }
        set {
            fileRole = newValue?.role
            fileParam = newValue?.param ?? ""
        }
    }
    private var fileRole: FileRole?
    private var fileParam: String = ""

    /// A schema from the stage's typed keys, each declared once as a static property.
    public init(_ name: String, _ doc: String, inputs: [any InputKey] = [], outputs: [any OutputKey] = [],
                params: [any ParamKey] = [], receivesFiles: (role: FileRole, param: Param<String>)? = nil) {
        self.name = name
        self.doc = doc
        self.inputs = inputs.map(\.spec)
        self.outputs = outputs.map(\.spec)
        self.params = params.map(\.spec)
        self.receivesFiles = receivesFiles.map { ($0.role, $0.param.name) }
    }

    public func input(_ name: String) -> PortSpec? { inputs.first { $0.name == name } }
    public func output(_ name: String) -> PortSpec? { outputs.first { $0.name == name } }
    public func param(_ name: String) -> ParamSpec? { params.first { $0.name == name } }
}
