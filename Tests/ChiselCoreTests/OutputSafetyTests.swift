import Foundation
import Testing

@testable import ChiselCore

/// The core pieces behind output safety: the policy's path rules, exact 64-bit integers, seeds,
/// non-finite parameter values and the folder lock.
@Suite struct OutputSafetyTests {
    @Test func escapingPathsAreNamed() {
        #expect(OutputPolicy.escape("/etc/x.png") == "is absolute")
        #expect(OutputPolicy.escape("~/x.png") == "starts in the home folder")
        #expect(OutputPolicy.escape("a/../../x.png") == "goes up with '..'")
        #expect(OutputPolicy.escape("a/b/{stem}..png") == nil, "'..' inside a name is not a folder step")
        let policy = OutputPolicy(root: "/out")
        #expect(policy.contains("/out/a/b.png"))
        #expect(!policy.contains("/outside/b.png"))
        #expect(!policy.contains("/out/../etc/b.png"))
    }

    @Test func integersAboveIntMaxStayExact() throws {
        let top = try JSONParser.parse("18446744073709551615")
        #expect(top == .uint(UInt64.max))
        #expect(top.serialized() == "18446744073709551615")
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int.max))
        #expect(try JSONParser.parse("18446744073709551616") == .double(18_446_744_073_709_551_616))
        #expect(parseLooseJSON("18446744073709551615") == .uint(UInt64.max), "--set and --var keep it too")
    }

    @Test func seedsCoverTorchsRange() {
        let spec = Param<Seed>(seed: "seed", "doc").spec
        #expect(ParamChecker.problem(with: .uint(UInt64.max), for: spec) == nil)
        #expect(ParamChecker.problem(with: .int(-1), for: spec) == nil)
        #expect(ParamChecker.problem(with: .int(-2), for: spec)?.contains("out of range -1...18446744073709551615") == true)
        #expect(Seed.read(.uint(UInt64.max)) == .fixed(UInt64.max))
        #expect(Seed.read(.int(-1)) == .random)
        #expect(Seed.fixed(UInt64.max).advanced(by: 2) == .fixed(1), "seed + index wraps as torch's seeds do")
        #expect(Seed.fixed(UInt64.max).paramValue == .uint(UInt64.max))
    }

    @Test func nonFiniteFloatsAreNamed() {
        let spec = ParamSpec.float("strength", default: 0.5, range: 0...1, "doc")
        #expect(ParamChecker.problem(with: .double(.nan), for: spec) == "must be a finite number, got nan")
        #expect(ParamChecker.problem(with: .double(.infinity), for: spec) == "must be a finite number, got inf")
    }

    @Test func aFolderLockIsExclusiveAndReleasedWithItsHolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chisel-lock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let first = try FolderLock(folder: folder)
            #expect(throws: ChiselError.self) { _ = try FolderLock(folder: folder) }
            withExtendedLifetime(first) {}
        }
        #expect(throws: Never.self) { _ = try FolderLock(folder: folder) }
    }

    @Test func temporariesAreUniquePerWrite() {
        #expect(AtomicFile.temporaryPath(for: "/a/b.png") != AtomicFile.temporaryPath(for: "/a/b.png"))
    }

    @Test func aNoReplaceWriteLeavesAnExistingFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chisel-keep-\(UUID().uuidString)").path
        defer { unlink(path) }
        try AtomicFile.write(Data([1]), to: path, replace: false)
        #expect(throws: ChiselError.self) { try AtomicFile.write(Data([2]), to: path, replace: false) }
        #expect(FileManager.default.contents(atPath: path) == Data([1]))
    }
}
