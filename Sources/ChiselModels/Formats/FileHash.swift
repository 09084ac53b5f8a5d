import CChiselKernels
import ChiselBase
import Foundation

/// The file hashes AUTOMATIC1111 writes into its infotext, so that it finds the same checkpoint,
/// VAE, LoRA and embedding when it reads a Chisel image: SHA-256 of the whole file (its `Model
/// hash` is the first 10 hex digits, `TI hashes` the first 12), and for `.safetensors` LoRAs the
/// "addnet" hash, SHA-256 of the bytes after the header (`Lora hashes`, 12 digits).
///
/// Hashing a 2–7 GB checkpoint takes seconds, so results are kept in a cache keyed by the file's
/// path, size and modification time: `$CHISEL_CACHE_DIR/hashes.json`, else
/// `$XDG_CACHE_HOME/chisel/hashes.json`, else `~/.cache/chisel/hashes.json`. `CHISEL_CACHE_DIR=off`
/// turns the cache off. A cache that cannot be read or written is ignored, never an error.
public enum FileHash {
    public enum Kind: String, Sendable {
        /// SHA-256 of the file.
        case sha256
        /// SHA-256 from the end of a safetensors header (kohya's / AUTOMATIC1111's addnet hash).
        case addnet
    }

    /// The hash as 64 lowercase hex digits, from the cache when the file has not changed.
    public static func hex(_ kind: Kind, of path: String) throws -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        let key = "\(kind.rawValue):\((path as NSString).standardizingPath)"
        let stamp = "\(size):\(modified)"
        if let cached = cache.withLock({ $0.entries[key] }), cached.stamp == stamp { return cached.hash }
        let hash = try compute(kind, path: path)
        cache.withLock { store in
            store.entries[key] = (stamp, hash)
            store.save()
        }
        return hash
    }

    /// Whether `path` is a file (not a folder): what has a hash.
    public static func isFile(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && !folder.boolValue
    }

    /// SHA-256 of `bytes` as hex (for tests and small data).
    public static func sha256(_ bytes: [UInt8]) -> String {
        var context = chisel_sha256()
        chisel_sha256_init(&context)
        bytes.withUnsafeBufferPointer { chisel_sha256_update(&context, $0.baseAddress, $0.count) }
        return finish(&context)
    }

    static func finish(_ context: inout chisel_sha256) -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        digest.withUnsafeMutableBufferPointer { chisel_sha256_final(&context, $0.baseAddress) }
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    static func compute(_ kind: Kind, path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ChiselError(.io, "cannot read the file to hash it", file: path) }
        defer { try? handle.close() }
        if kind == .addnet {
            guard let header = try handle.read(upToCount: 8), header.count == 8 else {
                throw ChiselError(.model, "too short for a safetensors header", file: path)
            }
            let length = header.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            try handle.seek(toOffset: 8 + length)
        }
        var context = chisel_sha256()
        chisel_sha256_init(&context)
        while let chunk = try handle.read(upToCount: 4 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { chisel_sha256_update(&context, $0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
        }
        return finish(&context)
    }

    struct Store {
        var file: String?
        var entries: [String: (stamp: String, hash: String)] = [:]

        init(file: String?) {
            self.file = file
            guard let file, let data = FileManager.default.contents(atPath: file),
                  let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)) else { return }
            for member in json.members ?? [] {
                if let stamp = member.value["stamp"]?.stringValue, let hash = member.value["hash"]?.stringValue {
                    entries[member.key] = (stamp, hash)
                }
            }
        }

        func save() {
            guard let file else { return }
            let json = JSONValue.object(entries.sorted { $0.key < $1.key }.map { key, value in
                JSONMember(key: key, value: .object([JSONMember(key: "stamp", value: .string(value.stamp)),
                                                     JSONMember(key: "hash", value: .string(value.hash))]))
            })
            let folder = (file as NSString).deletingLastPathComponent
            try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            // Written beside and renamed, so a reader never sees half a file.
            let temporary = file + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
            guard FileManager.default.createFile(atPath: temporary, contents: Data(json.serialized().utf8)) else { return }
            if rename(temporary, file) != 0 { try? FileManager.default.removeItem(atPath: temporary) }
        }
    }

    static let cache = Locked(Store(file: cacheFile(ProcessInfo.processInfo.environment)))

    static func cacheFile(_ environment: [String: String]) -> String? {
        if let dir = environment["CHISEL_CACHE_DIR"] {
            return dir.isEmpty || dir == "off" ? nil : (dir as NSString).appendingPathComponent("hashes.json")
        }
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/chisel/hashes.json" }
        guard let home = environment["HOME"], home.hasPrefix("/") else { return nil }
        return home + "/.cache/chisel/hashes.json"
    }
}
