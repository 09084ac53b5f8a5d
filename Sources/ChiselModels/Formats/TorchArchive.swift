import ChiselBase
import Foundation

/// Reads the tensors out of a file `torch.save` wrote (a zip of `data.pkl` and one entry per
/// storage) without running any of it: the pickle is interpreted by a small machine that knows
/// only containers, numbers, strings and the few constructors torch uses for tensors
/// (`_rebuild_tensor_v2`, `_rebuild_parameter`, the typed storages, `OrderedDict`). Anything
/// else (a class to construct, a function to call) is an error, so a hostile file can do no more
/// than fail to load. Used for AUTOMATIC1111's `.pt` embeddings.
public enum TorchArchive {
    /// A value of the pickle.
    public indirect enum Value: Sendable {
        case none
        case bool(Bool)
        case int(Int)
        case double(Double)
        case string(String)
        case bytes([UInt8])
        case list([Value])
        case tuple([Value])
        case dict([(Value, Value)])
        case tensor(shape: [Int], values: [Float])
        /// A global the machine knows by name (a storage type, a constructor).
        case global(String)
        case storage(type: String, key: String)

        public subscript(key: String) -> Value? {
            guard case .dict(let pairs) = self else { return nil }
            return pairs.first { if case .string(key) = $0.0 { return true } else { return false } }?.1
        }

        public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    }

    public static func load(path: String) throws -> Value {
        guard let data = FileManager.default.contents(atPath: path) else { throw ChiselError(.io, "cannot read the file", file: path) }
        let bytes = [UInt8](data)
        func fail(_ message: String) -> ChiselError { ChiselError(.model, message, file: path) }
        guard bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]) else {
            throw fail("not a torch.save zip archive (files from before PyTorch 1.6 are not read)")
        }
        let entries = try zipEntries(bytes, fail: fail)
        guard let pickle = entries.first(where: { $0.key.hasSuffix("/data.pkl") || $0.key == "data.pkl" }) else {
            throw fail("the archive has no data.pkl")
        }
        let prefix = String(pickle.key.dropLast("data.pkl".count))
        var machine = Machine(bytes: pickle.value, fail: fail) { key in
            guard let storage = entries[prefix + "data/" + key] else { throw fail("the archive has no storage \(key)") }
            return storage
        }
        return try machine.run()
    }

    /// Stored (uncompressed) zip entries by name, as torch.save writes them.
    static func zipEntries(_ bytes: [UInt8], fail: (String) -> ChiselError) throws -> [String: ArraySlice<UInt8>] {
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        // The end-of-central-directory record, within the last 64 KiB.
        var end = -1
        for i in stride(from: bytes.count - 22, through: max(0, bytes.count - 65_557), by: -1)
        where bytes[i] == 0x50 && bytes[i + 1] == 0x4B && bytes[i + 2] == 5 && bytes[i + 3] == 6 {
            end = i
            break
        }
        guard end >= 0 else { throw fail("the zip archive has no central directory") }
        var count = u16(end + 10), offset = u32(end + 16)
        if offset == 0xFFFF_FFFF || count == 0xFFFF { throw fail("zip64 archives are not read") }
        var entries: [String: ArraySlice<UInt8>] = [:]
        while count > 0 {
            guard offset + 46 <= bytes.count, u32(offset) == 0x0201_4B50 else { throw fail("the zip central directory is damaged") }
            let method = u16(offset + 10), size = u32(offset + 20), nameLength = u16(offset + 28)
            let extra = u16(offset + 30), comment = u16(offset + 32), local = u32(offset + 42)
            guard offset + 46 + nameLength <= bytes.count else { throw fail("the zip central directory is damaged") }
            let name = String(decoding: bytes[(offset + 46)..<(offset + 46 + nameLength)], as: UTF8.self)
            guard method == 0 else { throw fail("zip entry \(name) is compressed; torch.save stores them") }
            guard local + 30 <= bytes.count, u32(local) == 0x0403_4B50 else { throw fail("zip entry \(name) is damaged") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + size <= bytes.count else { throw fail("zip entry \(name) runs past the end of the file") }
            entries[name] = bytes[start..<(start + size)]
            offset += 46 + nameLength + extra + comment
            count -= 1
        }
        return entries
    }

    /// The pickle machine: a stack, marks and a memo; protocol 2–5 opcodes.
    struct Machine {
        let bytes: ArraySlice<UInt8>
        let fail: (String) -> ChiselError
        let storage: (String) throws -> ArraySlice<UInt8>
        var position: Int
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]

        init(bytes: ArraySlice<UInt8>, fail: @escaping (String) -> ChiselError, storage: @escaping (String) throws -> ArraySlice<UInt8>) {
            self.bytes = bytes
            self.fail = fail
            self.storage = storage
            position = bytes.startIndex
        }

        static let globals: Set<String> = [
            "collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
            "torch FloatStorage", "torch HalfStorage", "torch BFloat16Storage", "torch DoubleStorage",
        ]

        mutating func byte() throws -> UInt8 {
            guard position < bytes.endIndex else { throw fail("the pickle ends early") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, position + n <= bytes.endIndex else { throw fail("the pickle ends early") }
            defer { position += n }
            return bytes[position..<(position + n)]
        }

        mutating func integer(_ n: Int) throws -> Int {
            let raw = try take(n)
            var value = 0
            for (i, b) in raw.enumerated() { value |= Int(b) << (8 * i) }
            return value
        }

        mutating func pop() throws -> Value {
            guard let value = stack.popLast() else { throw fail("the pickle pops an empty stack") }
            return value
        }

        mutating func popMark() throws -> [Value] {
            guard let mark = marks.popLast(), mark <= stack.count else { throw fail("the pickle has no mark") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }

        mutating func run() throws -> Value {
            while true {
                let op = try byte()
                switch op {
                case 0x80: _ = try byte()  // PROTO
                case 0x95: _ = try take(8)  // FRAME
                case 0x2E: return try pop()  // STOP
                case 0x7D: stack.append(.dict([]))  // EMPTY_DICT
                case 0x5D: stack.append(.list([]))  // EMPTY_LIST
                case 0x29: stack.append(.tuple([]))  // EMPTY_TUPLE
                case 0x28: marks.append(stack.count)  // MARK
                case 0x4E: stack.append(.none)
                case 0x88: stack.append(.bool(true))
                case 0x89: stack.append(.bool(false))
                case 0x4B: stack.append(.int(Int(try byte())))  // BININT1
                case 0x4D: stack.append(.int(try integer(2)))  // BININT2
                case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try integer(4)))))  // BININT
                case 0x8A:  // LONG1
                    let n = Int(try byte())
                    guard n <= 8 else { throw fail("a pickled integer is too large") }
                    let raw = try take(n)
                    var value: Int64 = 0
                    for (i, b) in raw.enumerated() { value |= Int64(b) << (8 * Int64(i)) }
                    if n > 0, n < 8, raw.last.map({ $0 & 0x80 != 0 }) == true { value -= Int64(1) << (8 * Int64(n)) }
                    stack.append(.int(Int(value)))
                case 0x47:  // BINFLOAT (big-endian)
                    let raw = try take(8)
                    var bits: UInt64 = 0
                    for b in raw { bits = bits << 8 | UInt64(b) }
                    stack.append(.double(Double(bitPattern: bits)))
                case 0x8C: stack.append(.string(String(decoding: try take(Int(try byte())), as: UTF8.self)))  // SHORT_BINUNICODE
                case 0x58: stack.append(.string(String(decoding: try take(try integer(4)), as: UTF8.self)))  // BINUNICODE
                case 0x8D: stack.append(.string(String(decoding: try take(try integer(8)), as: UTF8.self)))  // BINUNICODE8
                case 0x43: stack.append(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINBYTES
                case 0x42: stack.append(.bytes(Array(try take(try integer(4)))))  // BINBYTES
                case 0x85: stack.append(.tuple([try pop()]))  // TUPLE1
                case 0x86:  // TUPLE2
                    let b = try pop(), a = try pop()
                    stack.append(.tuple([a, b]))
                case 0x87:  // TUPLE3
                    let c = try pop(), b = try pop(), a = try pop()
                    stack.append(.tuple([a, b, c]))
                case 0x74: stack.append(.tuple(try popMark()))  // TUPLE
                case 0x6C: stack.append(.list(try popMark()))  // LIST
                case 0x61:  // APPEND
                    let item = try pop()
                    guard case .list(let items) = try pop() else { throw fail("APPEND to a non-list") }
                    stack.append(.list(items + [item]))
                case 0x65:  // APPENDS
                    let items = try popMark()
                    guard case .list(let list) = try pop() else { throw fail("APPENDS to a non-list") }
                    stack.append(.list(list + items))
                case 0x73:  // SETITEM
                    let value = try pop(), key = try pop()
                    guard case .dict(let pairs) = try pop() else { throw fail("SETITEM on a non-dict") }
                    stack.append(.dict(pairs + [(key, value)]))
                case 0x75:  // SETITEMS
                    let items = try popMark()
                    guard items.count % 2 == 0, case .dict(let pairs) = try pop() else { throw fail("SETITEMS on a non-dict") }
                    stack.append(.dict(pairs + stride(from: 0, to: items.count, by: 2).map { (items[$0], items[$0 + 1]) }))
                case 0x71: memo[Int(try byte())] = stack.last  // BINPUT
                case 0x72: memo[try integer(4)] = stack.last  // LONG_BINPUT
                case 0x94: memo[memo.count] = stack.last  // MEMOIZE
                case 0x68, 0x6A:  // BINGET, LONG_BINGET
                    let index = op == 0x68 ? Int(try byte()) : try integer(4)
                    guard let value = memo[index] else { throw fail("the pickle reads an unset memo entry") }
                    stack.append(value)
                case 0x63:  // GLOBAL module\nname\n
                    let module = try line(), name = try line()
                    stack.append(try global("\(module) \(name)"))
                case 0x93:  // STACK_GLOBAL
                    guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                        throw fail("STACK_GLOBAL without names")
                    }
                    stack.append(try global("\(module) \(name)"))
                case 0x51:  // BINPERSID
                    guard case .tuple(let id) = try pop(), id.count >= 3, case .string("storage") = id[0],
                          case .global(let type) = id[1], case .string(let key) = id[2] else {
                        throw fail("a persistent id that is not a torch storage")
                    }
                    stack.append(.storage(type: type, key: key))
                case 0x52:  // REDUCE
                    let arguments = try pop(), callable = try pop()
                    stack.append(try reduce(callable, arguments))
                case 0x81:  // NEWOBJ
                    let arguments = try pop(), callable = try pop()
                    stack.append(try reduce(callable, arguments))
                case 0x62:  // BUILD: state for an object; the values Chisel reads need none
                    _ = try pop()
                default:
                    throw fail(String(format: "pickle opcode 0x%02x is not read (only plain data and tensors are)", op))
                }
            }
        }

        mutating func line() throws -> String {
            var out: [UInt8] = []
            while true {
                let b = try byte()
                if b == 0x0A { break }
                out.append(b)
            }
            return String(decoding: out, as: UTF8.self)
        }

        func global(_ name: String) throws -> Value {
            guard Self.globals.contains(name) else { throw fail("the pickle asks for \(name.replacingOccurrences(of: " ", with: ".")), which is not read: only tensors and plain data are") }
            return .global(name)
        }

        func reduce(_ callable: Value, _ arguments: Value) throws -> Value {
            guard case .global(let name) = callable, case .tuple(let args) = arguments else { throw fail("the pickle calls something that is not a known constructor") }
            switch name {
            case "collections OrderedDict":
                return .dict([])
            case "torch._utils _rebuild_parameter":
                guard let tensor = args.first else { throw fail("_rebuild_parameter without a tensor") }
                return tensor
            case "torch._utils _rebuild_tensor_v2":
                guard args.count >= 4, case .storage(let type, let key) = args[0], case .int(let offset) = args[1],
                      case .tuple(let sizeValues) = args[2], case .tuple(let strideValues) = args[3] else {
                    throw fail("_rebuild_tensor_v2 with arguments it does not take")
                }
                let shape = try sizeValues.map { value -> Int in guard case .int(let n) = value, n >= 0 else { throw fail("a tensor size is not a count") }; return n }
                let strides = try strideValues.map { value -> Int in guard case .int(let n) = value else { throw fail("a tensor stride is not an integer") }; return n }
                return .tensor(shape: shape, values: try gather(type: type, key: key, offset: offset, shape: shape, strides: strides))
            default:
                throw fail("the pickle calls \(name), which is not read")
            }
        }

        /// The tensor's values in row-major order from its storage, strides applied.
        func gather(type: String, key: String, offset: Int, shape: [Int], strides: [Int]) throws -> [Float] {
            let raw = try storage(key)
            let width: Int
            switch type {
            case "torch FloatStorage": width = 4
            case "torch HalfStorage", "torch BFloat16Storage": width = 2
            case "torch DoubleStorage": width = 8
            default: throw fail("storage type \(type) is not read")
            }
            let base = raw.startIndex
            func element(_ index: Int) throws -> Float {
                let at = base + index * width
                guard index >= 0, at + width <= raw.endIndex else { throw fail("a tensor reaches past its storage") }
                var bits: UInt64 = 0
                for i in 0..<width { bits |= UInt64(raw[at + i]) << (8 * UInt64(i)) }
                switch type {
                case "torch FloatStorage": return Float(bitPattern: UInt32(bits))
                case "torch DoubleStorage": return Float(Double(bitPattern: bits))
                case "torch BFloat16Storage": return Float(bitPattern: UInt32(bits) << 16)
                default: return Float(Float16(bitPattern: UInt16(bits)))
                }
            }
            guard shape.count == strides.count else { throw fail("a tensor's sizes and strides differ in count") }
            let count = shape.reduce(1, *)
            var values: [Float] = []
            values.reserveCapacity(count)
            var index = [Int](repeating: 0, count: shape.count)
            for _ in 0..<count {
                var at = offset
                for (i, s) in zip(index, strides) { at += i * s }
                values.append(try element(at))
                var d = shape.count - 1
                while d >= 0 {
                    index[d] += 1
                    if index[d] < shape[d] { break }
                    index[d] = 0
                    d -= 1
                }
            }
            return values
        }
    }
}
