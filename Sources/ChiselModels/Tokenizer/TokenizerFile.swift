import ChiselBase
import Foundation

/// Reads the files of a tokenizer folder, with errors that name the file.
enum TokenizerFile {
    /// Whether a regular file (or a link to one) exists at `path`.
    static func exists(_ path: String) -> Bool {
        var isFolder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && !isFolder.boolValue
    }

    /// The bytes of the file at `path`; an `.io` error when it cannot be read.
    static func bytes(_ path: String) throws -> [UInt8] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "cannot read file: no such file", file: path)
        }
        guard !isFolder.boolValue else { throw ChiselError(.io, "cannot read file: it is a folder", file: path) }
        do {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw ChiselError(.io, "cannot read file", file: path, cause: "\(error)")
        }
    }

    /// The file at `path` as UTF-8 text; a `.model` error when it is not valid UTF-8.
    static func text(_ path: String) throws -> String {
        guard let text = String(validating: try bytes(path), as: UTF8.self) else {
            throw ChiselError(.model, "the file is not valid UTF-8 text", file: path)
        }
        return text
    }

    /// The file at `path` parsed as JSON; syntax errors become `.model` errors naming the file.
    static func json(_ path: String) throws -> JSONValue {
        let bytes = try bytes(path)
        do {
            return try JSONParser.parse(bytes, file: path)
        } catch let error as ChiselError {
            throw ChiselError(.model, error.message, file: path)
        }
    }

    /// `name` inside `folder`.
    static func path(_ folder: String, _ name: String) -> String {
        (folder as NSString).appendingPathComponent(name)
    }
}
