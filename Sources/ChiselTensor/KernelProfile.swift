import ChiselBase
import Dispatch
import Foundation

/// Time spent per kind of kernel, collected when `CHISEL_PROFILE=1` is set, for finding where
/// a network's time goes. Costs one branch per kernel call when off.
public enum KernelProfile {
    public static let enabled = ProcessInfo.processInfo.environment["CHISEL_PROFILE"] == "1"
    private static let totals = Locked<[String: (seconds: Double, calls: Int)]>([:])

    @inline(__always)
    public static func measure<R>(_ name: @autoclosure () -> String, _ body: () throws -> R) rethrows -> R {
        guard enabled else { return try body() }
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let key = name()
            totals.withLock { $0[key, default: (0, 0)].seconds += seconds; $0[key, default: (0, 0)].calls += 1 }
        }
        return try body()
    }

    /// The totals so far, largest first, and resets them.
    public static func report() -> [(name: String, seconds: Double, calls: Int)] {
        totals.withLock { table in
            defer { table = [:] }
            return table.map { ($0.key, $0.value.seconds, $0.value.calls) }.sorted { $0.seconds > $1.seconds }
        }
    }
}
