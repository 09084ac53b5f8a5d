import ChiselCore
import ChiselTestSupport
import Foundation
import Testing

/// The version and the commit of a development build, read from a checkout's `.git`.
@Suite struct VersionTests {
    @Test func theNumberIsSemanticVersioning() {
        let parts = ChiselVersion.number.split(separator: ".")
        #expect(parts.count == 3 && parts.allSatisfy { Int($0) != nil }, "\(ChiselVersion.number)")
        #expect(ChiselVersion.text.hasPrefix(ChiselVersion.number))
    }

    @Test func theCommitComesFromHEADItsBranchOrPackedRefs() throws {
        let temp = try TemporaryFolder()
        let git = temp.path(".git")
        try FileManager.default.createDirectory(atPath: git + "/refs/heads", withIntermediateDirectories: true)
        let hash = String(repeating: "0123456789abcdef", count: 3).prefix(40)
        // A detached HEAD is the hash itself.
        try Data((hash + "\n").utf8).write(to: URL(fileURLWithPath: git + "/HEAD"))
        #expect(ChiselVersion.head(ofCheckout: temp.url.path) == String(hash))
        // A branch: its file under refs/, else its line in packed-refs.
        try Data("ref: refs/heads/main\n".utf8).write(to: URL(fileURLWithPath: git + "/HEAD"))
        #expect(ChiselVersion.head(ofCheckout: temp.url.path) == nil)
        let packed = String(repeating: "f", count: 40)
        try Data("# pack-refs with: peeled\n\(packed) refs/heads/main\n".utf8).write(to: URL(fileURLWithPath: git + "/packed-refs"))
        #expect(ChiselVersion.head(ofCheckout: temp.url.path) == packed)
        try Data((hash + "\n").utf8).write(to: URL(fileURLWithPath: git + "/refs/heads/main"))
        #expect(ChiselVersion.head(ofCheckout: temp.url.path) == String(hash))
        // A ref that climbs out of .git is not followed.
        try Data("ref: refs/../../outside\n".utf8).write(to: URL(fileURLWithPath: git + "/HEAD"))
        #expect(ChiselVersion.head(ofCheckout: temp.url.path) == nil)
    }
}
