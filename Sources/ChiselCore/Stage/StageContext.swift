/// What a running stage may use besides its inputs: run information, event reporting and the
/// ledger of files the run has read.
public struct StageContext: Sendable {
    public let node: String
    public let run: RunInfo
    public let files: FileLedger
    private let events: RunEventSink

    public init(node: String, run: RunInfo, files: FileLedger, events: @escaping RunEventSink) {
        self.node = node
        self.run = run
        self.files = files
        self.events = events
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
