import CChiselKernels
import Foundation

/// How many threads Chisel's kernels run on: what the process may use, not the machine's core
/// count. That is the CPU affinity mask (taskset, SLURM's `--cpus-per-task`) and the cgroup CPU
/// quota (Kubernetes' `resources.limits.cpu`: cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`),
/// whichever is smaller, rounded up to whole CPUs; `CHISEL_THREADS` (or `--threads`) overrides it.
public enum CPUBudget {
    /// The count and its reason, read once (the cgroup files and the affinity mask).
    private static let decided = decide()
    /// The kernels' thread count, fixed at first use.
    public static var threads: Int { decided.threads }
    /// Why it is that many: "CHISEL_THREADS", "affinity mask", "cgroup quota" or "all cores".
    public static var reason: String { decided.reason }

    /// The CPUs the affinity mask allows (all online cores when it cannot be read).
    public static var affinityCPUs: Int {
        let count = Int(chisel_affinity_cpu_count())
        return count > 0 ? count : max(1, ProcessInfo.processInfo.processorCount)
    }

    /// The quota of the cgroup the process is in, in CPUs, or nil when unlimited. `root` is where
    /// the cgroup file systems are mounted and `membership` the process's /proc/self/cgroup.
    public static func cgroupQuota(root: String = "/sys/fs/cgroup", membership: String = "/proc/self/cgroup") -> Double? {
        guard let text = try? String(contentsOfFile: membership, encoding: .utf8) else { return nil }
        var quotas: [Double] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let (controllers, path) = (fields[1].split(separator: ","), String(fields[2]))
            if controllers.isEmpty {
                // cgroup v2: "max 100000" or "150000 100000" in cpu.max, on the path and its parents.
                for folder in [root, root + "/unified"] {
                    quotas += ancestors(of: path).compactMap { quotaV2(folder + $0 + "/cpu.max") }
                }
            } else if controllers.contains("cpu") {
                for mount in [root + "/cpu", root + "/cpu,cpuacct", root + "/cpuacct,cpu"] {
                    quotas += ancestors(of: path).compactMap { quotaV1(mount + $0) }
                }
            }
        }
        return quotas.min()
    }

    /// `/a/b`, `/a`, `` (the mount's root): a cgroup's limits are its own and its parents'.
    static func ancestors(of path: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var all: [String] = []
        while true {
            all.append(parts.isEmpty ? "" : "/" + parts.joined(separator: "/"))
            if parts.isEmpty { break }
            parts.removeLast()
        }
        return all
    }

    static func quotaV2(_ file: String) -> Double? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 else { return nil }
        return quota / period
    }

    static func quotaV1(_ folder: String) -> Double? {
        guard let quotaText = try? String(contentsOfFile: folder + "/cpu.cfs_quota_us", encoding: .utf8),
              let periodText = try? String(contentsOfFile: folder + "/cpu.cfs_period_us", encoding: .utf8),
              let quota = Double(quotaText.trimmingCharacters(in: .whitespacesAndNewlines)),
              let period = Double(periodText.trimmingCharacters(in: .whitespacesAndNewlines)), quota > 0, period > 0
        else { return nil }
        return quota / period
    }

    /// The requested count from `CHISEL_THREADS`, or nil when unset; throws for a value that is
    /// not a whole number of at least 1.
    public static func requested(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int? {
        guard let text = environment["CHISEL_THREADS"], !text.isEmpty else { return nil }
        guard let count = Int(text), count >= 1 else {
            throw ChiselThreadsError(description: "CHISEL_THREADS='\(text)' must be a whole number of threads, at least 1")
        }
        return count
    }

    /// The count and the reason for it, from the environment and the process's limits.
    public static func decide(environment: [String: String] = ProcessInfo.processInfo.environment)
        -> (threads: Int, reason: String)
    {
        if let count = try? requested(environment) { return (count, "CHISEL_THREADS") }
        let cores = max(1, ProcessInfo.processInfo.processorCount)
        let affinity = affinityCPUs
        if let quota = cgroupQuota(), Int(quota.rounded(.up)) < min(affinity, cores) {
            return (max(1, Int(quota.rounded(.up))), "cgroup quota")
        }
        return affinity < cores ? (affinity, "affinity mask") : (cores, "all cores")
    }

    /// `threads` and its reason, for logs: "2 threads (all cores)".
    public static var summary: String { "\(threads) thread\(threads == 1 ? "" : "s") (\(reason))" }

    /// OpenMP's thread count (oneDNN's team) in this process, 0 without the runtime.
    public static var openMPThreads: Int { Int(chisel_openmp_max_threads()) }
}

/// A `CHISEL_THREADS` value that is not a thread count.
public struct ChiselThreadsError: Error, CustomStringConvertible, Sendable {
    public let description: String
}
