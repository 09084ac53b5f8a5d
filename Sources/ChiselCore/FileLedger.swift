import Foundation

/// The files a run has read, so that no stage ever writes over one of its inputs.
public final class FileLedger: Sendable {
    private let inputs = Locked<Set<String>>([])

    public init() {}

    /// The canonical form of a path: absolute, symbolic links resolved where the file exists.
    public static func canonical(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        return url.resolvingSymlinksInPath().path
    }

    public func noteInput(_ path: String) {
        let key = FileLedger.canonical(path)
        inputs.withLock { _ = $0.insert(key) }
    }

    public func isInput(_ path: String) -> Bool {
        let key = FileLedger.canonical(path)
        return inputs.withLock { $0.contains(key) }
    }
}
