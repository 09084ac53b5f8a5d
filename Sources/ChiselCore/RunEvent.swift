/// What a running graph reports, for progress display and logs. Libraries never print; the CLI
/// renders these.
public enum RunEvent: Sendable {
    case nodeStarted(node: String, stage: String)
    case nodeFinished(node: String, stage: String, seconds: Double)
    /// Progress inside a long stage, such as denoising steps.
    case nodeProgress(node: String, completed: Int, total: Int)
    case fileWritten(node: String, path: String)
    case warning(node: String?, message: String)
    /// Something worth telling that is not a problem, e.g. the seed a stage drew at random.
    case note(node: String?, message: String)
}

/// Receives run events; called from any thread.
public typealias RunEventSink = @Sendable (RunEvent) -> Void
