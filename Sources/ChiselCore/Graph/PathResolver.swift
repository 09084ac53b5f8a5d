import Foundation

/// Turns paths as users write them into absolute, normalised ones: `~/` expands to the home
/// folder and relative paths join `base` (a graph's folder, the working directory, or a batch's
/// output folder, as docs/graph-format.md says).
public struct PathResolver: Sendable, Equatable {
    public var base: String

    public init(base: String) { self.base = base }

    /// Relative to the process's working directory.
    public static var workingDirectory: PathResolver { PathResolver(base: FileManager.default.currentDirectoryPath) }

    public func resolve(_ path: String) -> String {
        var expanded = path
        if path == "~" || path.hasPrefix("~/") {
            expanded = FileManager.default.homeDirectoryForCurrentUser.path + path.dropFirst()
        }
        let url = expanded.hasPrefix("/")
            ? URL(fileURLWithPath: expanded)
            : URL(fileURLWithPath: base, isDirectory: true).appendingPathComponent(expanded)
        return url.standardizedFileURL.path
    }
}
