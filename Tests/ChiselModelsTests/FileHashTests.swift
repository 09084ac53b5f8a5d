import Foundation
import Testing
@testable import ChiselModels

/// SHA-256 (FIPS 180-4's examples) and the file hashes AUTOMATIC1111 writes.
@Suite struct FileHashTests {
    @Test func sha256MatchesTheStandardsExamples() {
        #expect(FileHash.sha256([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(FileHash.sha256(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(FileHash.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(FileHash.sha256([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func fileHashesAreTheWholeFileOrAfterTheSafetensorsHeader() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chisel-hash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // A safetensors-shaped file: 8-byte little-endian header length, the header, the data.
        let header = Array(#"{"__metadata__":{}}"#.utf8)
        let data: [UInt8] = Array(0..<200).map { UInt8($0) }
        var length = UInt64(header.count).littleEndian
        let bytes = withUnsafeBytes(of: &length) { Array($0) } + header + data
        let path = folder.appendingPathComponent("lora.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try FileHash.hex(.sha256, of: path) == FileHash.sha256(bytes))
        #expect(try FileHash.hex(.addnet, of: path) == FileHash.sha256(data), "kohya's addnet hash skips the header")
        #expect(FileHash.isFile(path) && !FileHash.isFile(folder.path))
    }

    @Test func theCacheFollowsTheEnvironment() {
        #expect(FileHash.cacheFile(["CHISEL_CACHE_DIR": "/c"]) == "/c/hashes.json")
        #expect(FileHash.cacheFile(["CHISEL_CACHE_DIR": "off", "HOME": "/h"]) == nil)
        #expect(FileHash.cacheFile(["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/chisel/hashes.json")
        #expect(FileHash.cacheFile(["HOME": "/h"]) == "/h/.cache/chisel/hashes.json")
    }
}
