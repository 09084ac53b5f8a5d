import Dispatch
import Foundation

/// Splits `count` independent pieces of work over the CPU's cores.
enum Parallel {
    static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)

    private struct Unchecked<T>: @unchecked Sendable { let value: T }

    /// Calls `body` with disjoint ranges covering `0..<count`, one per core, and waits for all.
    /// The ranges are disjoint, so writes through pointers `body` captures do not race.
    static func forEachChunk(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(cores, max(1, count / max(1, minimumChunk)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let work = Unchecked(value: escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { i in
                work.value((count * i / chunks)..<(count * (i + 1) / chunks))
            }
        }
    }
}

/// The text of a NUL-terminated message buffer filled by the C kernels.
func cMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
