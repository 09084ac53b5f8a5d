import CChiselKernels
import ChiselBase
import Dispatch
import Foundation

/// Splits `count` independent pieces of work over the CPU's cores.
public enum Parallel {
    /// The threads the process may use (`CPUBudget`), not the machine's core count.
    public static let cores = CPUBudget.threads

    private struct Unchecked<T>: @unchecked Sendable { let value: T }

    /// Calls `body` with disjoint ranges covering `0..<count`, one per core, and waits for all.
    /// The ranges are disjoint, so writes through pointers `body` captures do not race.
    public static func forEachChunk(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(cores, max(1, count / max(1, minimumChunk)))
        if chunks == 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            // On oneDNN's OpenMP threads where that runtime is loaded (see chisel_parallel_chunks),
            // else on Dispatch's.
            var box = ChunkBox(body: escapable)
            let ran = withUnsafeMutablePointer(to: &box) { pointer in
                chisel_parallel_chunks(Int64(count), Int64(chunks), { context, begin, end in
                    guard let context else { return }
                    context.assumingMemoryBound(to: ChunkBox.self).pointee.body(Int(begin)..<Int(end))
                }, pointer)
            }
            guard ran == 0 else { return }
            let work = Unchecked(value: escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { i in
                work.value((count * i / chunks)..<(count * (i + 1) / chunks))
            }
        }
    }

    private struct ChunkBox {
        let body: (Range<Int>) -> Void
    }
}

/// The text of a NUL-terminated message buffer filled by the C kernels.
func cMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs a C kernel that writes into `output` and reports failure through a status and a message
/// buffer, timed under `label` when profiling; a failure becomes a `ChiselError` saying `what`.
func runKernel<Element>(_ label: @autoclosure () -> String, what: String, output: inout [Element],
                        _ execute: (UnsafeMutablePointer<Element>?, UnsafeMutablePointer<CChar>) -> Int32) throws {
    var error = [CChar](repeating: 0, count: 256)
    let status = KernelProfile.measure(label()) {
        output.withUnsafeMutableBufferPointer { dst in
            error.withUnsafeMutableBufferPointer { buffer in
                guard let message = buffer.baseAddress else { return Int32(-1) }
                return execute(dst.baseAddress, message)
            }
        }
    }
    guard status == 0 else { throw ChiselError(.internal, "\(what) failed: \(cMessage(error))") }
}
