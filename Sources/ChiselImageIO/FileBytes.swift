import ChiselCore
import Foundation

/// Reads whole files with errors that name the file and the system's reason.
enum FileBytes {
    /// The contents of the file at `path`; `.io` errors for missing files, folders, permissions.
    static func read(path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ChiselError(.io, "cannot read file: \(String(cString: strerror(errno)))", file: path)
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw ChiselError(.io, "cannot read file: \(String(cString: strerror(errno)))", file: path)
        }
        // S_IFMT / S_IFDIR / S_IFREG spelled out: Swift does not import the glibc macros.
        let kind = status.st_mode & 0o170000
        if kind == 0o040000 { throw ChiselError(.io, "cannot read file: it is a folder", file: path) }
        var data = Data(count: kind == 0o100000 ? max(Int(status.st_size), 0) : 0)
        var filled = 0
        while true {
            if filled == data.count { data.count = max(data.count * 2, filled + 65536) }
            let n = data.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Foundation.read(fd, base + filled, raw.count - filled)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChiselError(.io, "cannot read file: \(String(cString: strerror(errno)))", file: path)
            }
            if n == 0 { break }
            filled += n
        }
        data.count = filled
        return data
    }

    /// `path` made absolute against the current folder, with `.` and `..` resolved.
    static func absolutePath(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }
}
