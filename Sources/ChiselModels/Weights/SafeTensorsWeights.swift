import ChiselCore
import Foundation

/// Weights read from one or more safetensors files (a sharded checkpoint's shards), with an
/// optional renaming from the files' names to the networks' names.
public struct SafeTensorsWeights: WeightStore {
    public let source: String
    private let files: [SafeTensorsFile]
    /// Network name → (file index, name in that file).
    private let index: [String: (file: Int, name: String)]

    /// `rename` maps a stored name to the network's name, or nil to leave the tensor out.
    public init(files: [SafeTensorsFile], source: String, rename: (String) -> String? = { $0 }) throws {
        var index: [String: (file: Int, name: String)] = [:]
        for (i, file) in files.enumerated() {
            for name in file.names {
                guard let mapped = rename(name) else { continue }
                if let existing = index[mapped] {
                    throw ChiselError(.model, "'\(name)' and '\(existing.name)' both provide '\(mapped)'", file: file.path,
                                      tensor: mapped)
                }
                index[mapped] = (i, name)
            }
        }
        self.files = files
        self.index = index
        self.source = source
    }

    public var names: [String] { Array(index.keys) }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    private func locate(_ name: String) throws -> (SafeTensorsFile, String) {
        guard let entry = index[name] else {
            throw ChiselError(.model, "missing tensor", file: source, tensor: name)
        }
        return (files[entry.file], entry.name)
    }

    public func shape(_ name: String) throws -> [Int] {
        let (file, stored) = try locate(name)
        return try file.info(stored).shape
    }

    public func floats(_ name: String) throws -> [Float] {
        let (file, stored) = try locate(name)
        return try file.floats(stored)
    }

    /// Tensors by stored dtype, and the parameter count, for `chisel model inspect`.
    public func summary() -> (dtypes: [TensorDType: Int], parameters: Int) {
        var dtypes: [TensorDType: Int] = [:]
        var parameters = 0
        for (file, stored) in index.values.map({ (files[$0.file], $0.name) }) {
            guard let info = file.tensors[stored] else { continue }
            dtypes[info.dtype, default: 0] += 1
            parameters += info.elementCount
        }
        return (dtypes, parameters)
    }
}
