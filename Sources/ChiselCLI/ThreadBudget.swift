import ChiselTensor
import Foundation

/// Puts the process's kernel threads where `CPUBudget` says, before any kernel runs. Chisel's
/// own loops read `CPUBudget.threads`; oneDNN's OpenMP team is sized by the runtime when it
/// loads, from `OMP_NUM_THREADS` or the affinity mask, which a cgroup quota or `--threads` does
/// not reach: when the two differ, the program starts itself again once with `OMP_NUM_THREADS`
/// set, so both agree from the first kernel on.
enum ThreadBudget {
    static let reexecMarker = "CHISEL_THREADS_APPLIED"

    static func apply(arguments: [String], name: String) {
        if let value = option(in: arguments), let count = Int(value), count >= 1 {
            setenv("CHISEL_THREADS", String(count), 1)
        }
        do {
            _ = try CPUBudget.requested()
        } catch {
            Terminal.err("error: \(error) (see '\(name) help')")
            exit(64)
        }
        let wanted = CPUBudget.threads
        let team = CPUBudget.openMPThreads
        guard team > 0, team != wanted, getenv(reexecMarker) == nil else { return }
        setenv("OMP_NUM_THREADS", String(wanted), 1)
        setenv(reexecMarker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Not reached unless exec failed: run on, with Chisel's loops at the budget and oneDNN's
        // team as the runtime sized it.
    }

    /// The value of `--threads N` or `--threads=N`, as given.
    static func option(in arguments: [String]) -> String? {
        for (i, argument) in arguments.enumerated() {
            if argument == "--threads", i + 1 < arguments.count { return arguments[i + 1] }
            if argument.hasPrefix("--threads=") { return String(argument.dropFirst("--threads=".count)) }
        }
        return nil
    }
}
