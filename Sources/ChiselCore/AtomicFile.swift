import Foundation

/// Writes files so that a reader never sees a half-written one: the bytes go to a temporary
/// name in the same folder, are flushed to disk, and are renamed over the final name.
public enum AtomicFile {
    /// The suffix of temporary files; a folder may hold stale ones after a crash.
    public static let temporarySuffix = ".chisel-tmp"

    private static let writes = Locked(0)

    /// A temporary name for writing `path`, unique to this process and this write, so that two
    /// writers of one file never share a temporary.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        let serial = writes.withLock { count -> Int in
            count += 1
            return count
        }
        return folder + "/." + url.lastPathComponent + "." + String(getpid()) + "-" + String(serial) + temporarySuffix
    }

    /// Writes `data` to `path` atomically, creating the folder if needed. With `replace` false an
    /// existing file (even one that appeared while writing) is left alone and an error thrown.
    public static func write(_ data: Data, to path: String, replace: Bool = true) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw ChiselError(.io, "cannot create folder \(folder)", file: path, cause: "\(error.localizedDescription)")
        }
        let temp = temporaryPath(for: path)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else {
            throw ChiselError(.io, "cannot write file: \(String(cString: strerror(errno)))", file: path)
        }
        var failure: String?
        data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = Foundation.write(fd, base + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += n
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(temp)
            throw ChiselError(.io, "cannot write file: \(failure)", file: path)
        }
        if !replace {
            // link() refuses an existing name, atomically: no check-then-write window.
            let linked = link(temp, path) == 0
            let reason = errno
            unlink(temp)
            guard linked else {
                throw ChiselError(.io, reason == EEXIST ? "output exists and may not be replaced"
                                  : "cannot move temporary file into place: \(String(cString: strerror(reason)))", file: path)
            }
            return
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw ChiselError(.io, "cannot move temporary file into place: \(reason)", file: path)
        }
    }

    /// Removes the temporaries left for `outputs` only (by a killed writer of those files), so
    /// that processes sharing a folder — shards of one batch — never touch each other's.
    @discardableResult
    public static func removeStaleTemporaries(for outputs: [String]) -> Int {
        var removed = 0
        let byFolder = Dictionary(grouping: outputs) { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        for (folder, paths) in byFolder {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
            // `.NAME.PID-SERIAL.chisel-tmp`, exactly: a temporary of another file whose name starts
            // like one of ours (`a.png` and `a.png.png`) is not ours.
            let targets = Set(paths.map { URL(fileURLWithPath: $0).lastPathComponent })
            for name in names where name.hasPrefix(".") && name.hasSuffix(temporarySuffix) {
                let core = name.dropFirst().dropLast(temporarySuffix.count)
                guard let dot = core.lastIndex(of: "."), targets.contains(String(core[..<dot])) else { continue }
                let stamp = core[core.index(after: dot)...].split(separator: "-")
                guard stamp.count == 2, stamp.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { continue }
                if unlink(folder + "/" + name) == 0 { removed += 1 }
            }
        }
        return removed
    }

    /// Removes temporary files left in `folder` by an interrupted run; returns how many.
    @discardableResult
    public static func removeStaleTemporaries(in folder: String) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return 0 }
        var removed = 0
        for name in names where name.hasPrefix(".") && name.hasSuffix(temporarySuffix) {
            if unlink(folder + "/" + name) == 0 { removed += 1 }
        }
        return removed
    }
}
