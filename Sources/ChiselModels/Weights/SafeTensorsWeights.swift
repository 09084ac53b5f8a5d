import ChiselBase
import Foundation

/// Weights read from one or more safetensors files (a sharded checkpoint's shards), with an
/// optional renaming from the files' names to the networks' names.
public struct SafeTensorsWeights: WeightStore {
    public let source: String
    private let files: [SafeTensorsFile]
    /// Network name → where it is stored: file index, stored name, and the part of a stacked tensor.
    private let index: [String: (file: Int, name: String, part: Int, parts: Int, transposed: Bool)]

    /// `rename` maps a stored name to the network's name, or nil to leave the tensor out.
    public init(files: [SafeTensorsFile], source: String, rename: (String) -> String? = { $0 }) throws {
        try self.init(files: files, source: source, names: { rename($0).map { [WeightName(name: $0)] } ?? [] })
    }

    /// `names` maps a stored name to the network names it provides: none (left out), one, or
    /// several equal parts stacked along the first dimension.
    public init(files: [SafeTensorsFile], source: String, names: (String) -> [WeightName]) throws {
        var index: [String: (file: Int, name: String, part: Int, parts: Int, transposed: Bool)] = [:]
        for (i, file) in files.enumerated() {
            for name in file.names {
                for mapped in names(name) {
                    if let existing = index[mapped.name] {
                        throw ChiselError(.model, "'\(name)' and '\(existing.name)' both provide '\(mapped.name)'",
                                          file: file.path, tensor: mapped.name)
                    }
                    index[mapped.name] = (i, name, mapped.part, mapped.parts, mapped.transposed)
                }
            }
        }
        self.files = files
        self.index = index
        self.source = source
    }

    public var names: [String] { Array(index.keys) }

    public func contains(_ name: String) -> Bool { index[name] != nil }

    private func locate(_ name: String) throws -> (file: SafeTensorsFile, stored: String, part: Int, parts: Int, transposed: Bool) {
        guard let entry = index[name] else {
            throw ChiselError(.model, "missing tensor", file: source, tensor: name)
        }
        return (files[entry.file], entry.name, entry.part, entry.parts, entry.transposed)
    }

    public func shape(_ name: String) throws -> [Int] {
        let entry = try locate(name)
        var shape = try entry.file.info(entry.stored).shape
        if entry.transposed {
            guard shape.count == 2 else {
                throw ChiselError(.model, "a transposed tensor must be 2-D, this one is \(shape)", file: source, tensor: entry.stored)
            }
            return [shape[1], shape[0]]
        }
        guard entry.parts > 1 else { return shape }
        guard let rows = shape.first, rows % entry.parts == 0 else {
            throw ChiselError(.model, "shape \(shape) does not split into \(entry.parts) equal parts", file: source,
                              tensor: entry.stored)
        }
        shape[0] = rows / entry.parts
        return shape
    }

    public func floats(_ name: String) throws -> [Float] {
        let entry = try locate(name)
        let values = try entry.file.floats(entry.stored)
        if entry.transposed {
            let stored = try entry.file.info(entry.stored).shape
            guard stored.count == 2 else { throw ChiselError(.model, "a transposed tensor must be 2-D", file: source, tensor: entry.stored) }
            let (rows, columns) = (stored[0], stored[1])
            var out = [Float](repeating: 0, count: values.count)
            for r in 0..<rows { for c in 0..<columns { out[c * rows + r] = values[r * columns + c] } }
            return out
        }
        guard entry.parts > 1 else { return values }
        let size = try shape(name).reduce(1, *)
        return Array(values[(entry.part * size)..<((entry.part + 1) * size)])
    }

    /// How many stored tensors provide these weights.
    public var storedCount: Int { Set(index.values.map { StoredTensor(file: $0.file, name: $0.name) }).count }

    /// Tensors by stored dtype, and the parameter count, for `chisel model inspect`.
    public func summary() -> (dtypes: [TensorDType: Int], parameters: Int) {
        var dtypes: [TensorDType: Int] = [:]
        var parameters = 0
        let stored = Set(index.values.map { StoredTensor(file: $0.file, name: $0.name) })
        for tensor in stored {
            guard let info = files[tensor.file].tensors[tensor.name] else { continue }
            dtypes[info.dtype, default: 0] += 1
            parameters += info.elementCount
        }
        return (dtypes, parameters)
    }
}

private struct StoredTensor: Hashable {
    let file: Int
    let name: String
}
