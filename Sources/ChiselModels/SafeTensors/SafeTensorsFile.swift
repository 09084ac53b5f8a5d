import ChiselBase
import Foundation

/// A memory-mapped safetensors file whose header has been checked before anything trusts it.
///
/// The format: 8 bytes little-endian header length N, N bytes of JSON (name → dtype, shape,
/// data_offsets relative to the data section, plus an optional `__metadata__` of strings), then
/// the data section. Every offset is checked against the file, every byte range against its
/// shape and dtype, and ranges may not overlap, so no read can leave the mapping.
public final class SafeTensorsFile: Sendable {
    /// Headers larger than this are refused (real ones are well under 1 MB).
    public static let maxHeaderBytes = 100 * 1024 * 1024

    public let path: String
    /// Tensors by name.
    public let tensors: [String: TensorInfo]
    /// Tensor names in data order.
    public let names: [String]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    public init(path: String) throws {
        try CheckpointFormat.refuseUnsafe(path)
        let file = try MappedFile(path: path)
        let bytes = file.bytes
        func fail(_ message: String, tensor: String? = nil) -> ChiselError {
            ChiselErrorFactory.model(message, path, tensor: tensor)
        }
        guard bytes.count >= 8 else {
            throw fail("file is \(bytes.count) bytes, too short for a safetensors header (truncated?)")
        }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw fail("header length \(headerLength) is implausibly large (not a safetensors file?)")
        }
        guard 8 + Int(headerLength) <= bytes.count else {
            throw fail("header of \(headerLength) bytes runs past the end of the \(bytes.count)-byte file (truncated?)")
        }
        let headerBytes = Array(bytes[8..<(8 + Int(headerLength))])
        let header: JSONValue
        do {
            header = try JSONParser.parse(headerBytes, file: path)
        } catch let error as ChiselError {
            throw fail("header is not valid JSON: \(error.message)")
        }
        guard let members = header.members else { throw fail("header is not a JSON object") }

        let dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart
        var tensors: [String: TensorInfo] = [:]
        var metadata: [String: String] = [:]
        for member in members {
            if member.key == "__metadata__" {
                guard let entries = member.value.members else { throw fail("__metadata__ is not an object") }
                for entry in entries {
                    guard let text = entry.value.stringValue else {
                        throw fail("__metadata__ value '\(entry.key)' is not a string")
                    }
                    metadata[entry.key] = text
                }
                continue
            }
            let name = member.key
            guard tensors[name] == nil else { throw fail("tensor listed twice in the header", tensor: name) }
            guard let dtypeName = member.value["dtype"]?.stringValue else {
                throw fail("no dtype string", tensor: name)
            }
            guard let dtype = TensorDType(rawValue: dtypeName) else {
                throw fail("unknown dtype '\(dtypeName)'", tensor: name)
            }
            guard case .array(let shapeJSON)? = member.value["shape"] else { throw fail("no shape array", tensor: name) }
            var shape: [Int] = []
            var count = 1
            for dimension in shapeJSON {
                guard case .int(let size) = dimension, size >= 0 else {
                    throw fail("shape \(member.value["shape"]?.serialized() ?? "") is not a list of sizes", tensor: name)
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow else { throw fail("shape \(JSONValue.array(shapeJSON).serialized()) overflows", tensor: name) }
                count = product
                shape.append(size)
            }
            guard case .array(let offsets)? = member.value["data_offsets"], offsets.count == 2,
                case .int(let begin) = offsets[0], case .int(let end) = offsets[1], begin >= 0, begin <= end
            else {
                throw fail("data_offsets must be [begin, end] with 0 ≤ begin ≤ end", tensor: name)
            }
            guard end <= dataSize else {
                throw fail("data_offsets [\(begin), \(end)] point past the end of the data (\(dataSize) bytes; truncated file?)",
                           tensor: name)
            }
            let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, byteCount == end - begin else {
                throw fail("shape \(shape) of \(dtype.rawValue) needs \(count.multipliedReportingOverflow(by: dtype.byteSize).partialValue) bytes "
                           + "but data_offsets [\(begin), \(end)] hold \(end - begin)", tensor: name)
            }
            tensors[name] = TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
        }
        let ordered = tensors.values.sorted { ($0.dataRange.lowerBound, $0.name) < ($1.dataRange.lowerBound, $1.name) }
        for (previous, next) in zip(ordered, ordered.dropFirst())
        where next.dataRange.lowerBound < previous.dataRange.upperBound && !next.dataRange.isEmpty {
            throw fail("data of '\(next.name)' overlaps '\(previous.name)'", tensor: next.name)
        }
        self.path = path
        self.tensors = tensors
        self.names = ordered.map(\.name)
        self.metadata = metadata
        self.file = file
        self.dataStart = dataStart
    }

    public func info(_ name: String) throws -> TensorInfo {
        guard let info = tensors[name] else {
            throw ChiselErrorFactory.model("no such tensor in the file", path, tensor: name)
        }
        return info
    }

    /// The tensor's bytes in place, valid while this file object lives.
    public func withBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(name)
        let slice = UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound)])
        return try body(slice)
    }

    /// The values of an integer tensor (I64, I32, I16, I8, U32, U16, U8, BOOL) as Int.
    public func integers(_ name: String) throws -> [Int] {
        let info = try info(name)
        return try withBytes(name) { raw in
            let count = info.elementCount
            switch info.dtype {
            case .i64: return (0..<count).map { Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
            case .i32: return (0..<count).map { Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
            case .u32: return (0..<count).map { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            case .i16: return (0..<count).map { Int(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
            case .u16: return (0..<count).map { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case .i8: return (0..<count).map { Int(raw.load(fromByteOffset: $0, as: Int8.self)) }
            case .u8, .bool: return (0..<count).map { Int(raw[$0]) }
            default:
                throw ChiselErrorFactory.model("dtype \(info.dtype.rawValue) is not an integer type", path, tensor: name)
            }
        }
    }

    /// The tensor's values as Float, converted from F32, F16, BF16 or F64.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        guard info.dtype.isFloatingPoint else {
            throw ChiselErrorFactory.model("dtype \(info.dtype.rawValue) is not a floating-point type", path, tensor: name)
        }
        let values = try withBytes(name) { raw in FloatConversion.floats(from: raw, dtype: info.dtype) }
        file.release((dataStart + info.dataRange.lowerBound)..<(dataStart + info.dataRange.upperBound))
        return values
    }
}
