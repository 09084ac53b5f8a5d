import Foundation

/// Where a graph's outputs may be written: the rule for batches (under `--output`) and for graphs
/// that came with an image (`chisel run --from`: under `--output`, by file name, nothing replaced).
public struct OutputPolicy: Sendable, Equatable {
    /// The folder relative output paths resolve under.
    public var root: String
    /// Output paths the graph gives must stay under `root`: no absolute path, no `~`, no `..`.
    public var confined: Bool
    /// Only the last component of each output path the graph gives is used (graphs from images).
    public var fileNameOnly: Bool
    /// Whether an existing file may be replaced; when false, existing outputs are refused before
    /// anything runs and a file that appears meanwhile is not replaced either.
    public var replaceExisting: Bool
    /// Where the rule comes from, for messages ("a batch", "a graph from an image").
    public var origin: String

    public init(root: String, confined: Bool = true, fileNameOnly: Bool = false, replaceExisting: Bool = true,
                origin: String = "a batch") {
        self.root = root
        self.confined = confined
        self.fileNameOnly = fileNameOnly
        self.replaceExisting = replaceExisting
        self.origin = origin
    }

    /// The rule for a graph read from an image: every output by file name under `root`.
    public static func fromImage(root: String, replaceExisting: Bool) -> OutputPolicy {
        OutputPolicy(root: root, confined: true, fileNameOnly: true, replaceExisting: replaceExisting,
                     origin: "a graph from an image")
    }

    /// Why `path` would leave the folder it is relative to, or nil when it stays inside.
    public static func escape(_ path: String) -> String? {
        if path.hasPrefix("/") { return "is absolute" }
        if path == "~" || path.hasPrefix("~/") { return "starts in the home folder" }
        if path.split(separator: "/").contains("..") { return "goes up with '..'" }
        return nil
    }

    /// `name` under `root`, with no `~` expansion.
    static func join(_ root: String, _ name: String) -> String {
        URL(fileURLWithPath: root, isDirectory: true).appendingPathComponent(name).standardizedFileURL.path
    }

    /// Whether `path` (absolute, after templates) lies inside `root`.
    public func contains(_ path: String) -> Bool {
        let folder = URL(fileURLWithPath: root).standardizedFileURL.path
        let file = URL(fileURLWithPath: path).standardizedFileURL.path
        return folder == "/" || file.hasPrefix(folder.hasSuffix("/") ? folder : folder + "/")
    }

    /// Why an output cannot be written at `path` whatever the policy: it is a folder, or an
    /// existing thing that is not a regular file (a device such as /dev/full, a pipe, a socket).
    public static func unwritable(_ path: String) -> String? {
        guard let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType else {
            return nil
        }
        switch type {
        case .typeRegular, .typeSymbolicLink: return nil
        case .typeDirectory: return "output is a folder; give a file name such as \(path)/image.png"
        default: return "output exists and is not a regular file (a device, pipe or socket); give a file path"
        }
    }
}
