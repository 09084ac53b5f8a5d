import ChiselBase
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

    /// Tells the kernel the pages of `range` (bytes from the start of the file) are not needed
    /// any more: a tensor read once into its kernel's layout should not keep its file pages
    /// resident, or loading a checkpoint would hold it twice. Reading the range again simply
    /// faults the pages back in from the file.
    func release(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        // Only whole pages inside the range, so neighbouring tensors keep theirs.
        let start = (range.lowerBound + page - 1) / page * page
        let end = range.upperBound / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
