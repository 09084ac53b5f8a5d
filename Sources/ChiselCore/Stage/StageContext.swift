/// What a running stage may use besides its inputs: run information, event reporting and the
/// ledger of files the run has read.
public struct StageContext: Sendable {
    public let node: String
    public let run: RunInfo
    public let files: FileLedger
    /// The graph being run and what stages resolved in it, for outputs that record how they were made.
    public let provenance: Provenance?
    private let events: RunEventSink

    public init(node: String, run: RunInfo, files: FileLedger, provenance: Provenance? = nil,
                events: @escaping RunEventSink) {
        self.node = node
        self.run = run
        self.files = files
        self.provenance = provenance
        self.events = events
    }

    /// Records the value a parameter left to be chosen took (a seed of -1), so the graph saved
    /// with the outputs reproduces them.
    public func record<V>(_ param: Param<V>, _ value: V) {
        if let json = value.paramValue { provenance?.record(node: node, param: param.name, value: json) }
    }

    /// Reports progress inside a long stage.
    public func progress(completed: Int, total: Int) {
        events(.nodeProgress(node: node, completed: completed, total: total))
    }

    /// Reports something the user should know that does not stop the run.
    public func warn(_ message: String) {
        events(.warning(node: node, message: message))
    }

    /// Reports something the user should know that is not a problem (a seed drawn at random).
    public func note(_ message: String) {
        events(.note(node: node, message: message))
    }

    /// Reports a file the stage wrote.
    public func wrote(_ path: String) {
        events(.fileWritten(node: node, path: path))
    }
}
