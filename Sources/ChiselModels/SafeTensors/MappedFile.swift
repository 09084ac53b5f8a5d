import Foundation

/// A read-only memory map of a whole file: tensors are read in place, so opening a checkpoint
/// costs address space, not memory.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ChiselErrorFactory.io("cannot open file: \(String(cString: strerror(errno)))", path)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw ChiselErrorFactory.io("cannot read file size: \(String(cString: strerror(errno)))", path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ChiselErrorFactory.io("not a regular file", path)
        }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw ChiselErrorFactory.io("cannot map file: \(String(cString: strerror(errno)))", path)
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
