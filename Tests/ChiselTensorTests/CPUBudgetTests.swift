import ChiselTensor
import Foundation
import Testing

/// The kernels' thread count follows the CPUs the process may use: cgroup quotas (v1 and v2,
/// the tightest of a cgroup and its parents) and CHISEL_THREADS.
@Suite struct CPUBudgetTests {
    static func write(_ text: String, _ path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func cgroupV2QuotaIsTheTightestOnThePath() throws {
        let temp = try TemporaryFolder()
        let root = temp.path("cgroup")
        try Self.write("0::/kubepods/pod1/c1\n", temp.path("self"))
        try Self.write("max 100000\n", root + "/cpu.max")
        try Self.write("300000 100000\n", root + "/kubepods/pod1/cpu.max")
        try Self.write("150000 100000\n", root + "/kubepods/pod1/c1/cpu.max")
        #expect(CPUBudget.cgroupQuota(root: root, membership: temp.path("self")) == 1.5)
    }

    @Test func cgroupV1QuotaIsRead() throws {
        let temp = try TemporaryFolder()
        let root = temp.path("cgroup")
        try Self.write("4:memory:/slurm\n2:cpu,cpuacct:/slurm/job1\n", temp.path("self"))
        try Self.write("100000\n", root + "/cpu,cpuacct/slurm/job1/cpu.cfs_period_us")
        try Self.write("100000\n", root + "/cpu,cpuacct/slurm/job1/cpu.cfs_quota_us")
        try Self.write("-1\n", root + "/cpu,cpuacct/cpu.cfs_quota_us")
        try Self.write("100000\n", root + "/cpu,cpuacct/cpu.cfs_period_us")
        #expect(CPUBudget.cgroupQuota(root: root, membership: temp.path("self")) == 1)
    }

    @Test func noQuotaIsNil() throws {
        let temp = try TemporaryFolder()
        try Self.write("0::/\n", temp.path("self"))
        try Self.write("max 100000\n", temp.path("cgroup") + "/cpu.max")
        #expect(CPUBudget.cgroupQuota(root: temp.path("cgroup"), membership: temp.path("self")) == nil)
    }

    @Test func chiselThreadsOverridesAndIsChecked() throws {
        #expect(CPUBudget.decide(environment: ["CHISEL_THREADS": "3"]) == (3, "CHISEL_THREADS"))
        #expect(throws: ChiselThreadsError.self) { try CPUBudget.requested(["CHISEL_THREADS": "0"]) }
        #expect(throws: ChiselThreadsError.self) { try CPUBudget.requested(["CHISEL_THREADS": "two"]) }
        #expect(try CPUBudget.requested([:]) == nil)
        #expect(CPUBudget.decide(environment: [:]).threads >= 1)
    }
}
