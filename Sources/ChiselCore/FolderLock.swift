import Foundation

/// An exclusive lock on a folder that one process holds while it works there (a batch on its
/// output folder), so that a second one refuses to start instead of redoing the same items and
/// overwriting the first one's report. It is an `flock` on a hidden file in the folder: the
/// kernel releases it when the holder exits, however it exits, so a lock left by a killed
/// process is simply taken by the next one.
public final class FolderLock: Sendable {
    /// The lock file's name inside the folder.
    public static let fileName = ".chisel-batch.lock"

    private let descriptor: Int32
    public let path: String

    /// Takes the lock named `name` on `folder` (which must exist), or throws naming the process
    /// that holds it. Shards of one batch each take their own.
    public init(folder: String, name: String = FolderLock.fileName, purpose: String = "chisel batch") throws {
        path = URL(fileURLWithPath: folder).appendingPathComponent(name).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ChiselError(.io, "cannot create the folder's lock file: \(String(cString: strerror(errno)))", file: path)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            close(fd)
            throw ChiselError(.io, "another \(purpose)\(holder.map { $0.isEmpty ? "" : " (\($0))" } ?? "") is working in "
                              + "\(folder); wait for it to finish, or give another --output folder", file: folder)
        }
        descriptor = fd
        // Who holds it, for the message another process shows.
        let note = "process \(getpid())"
        _ = ftruncate(fd, 0)
        _ = note.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
