import Foundation

/// Reads a diffusers/transformers config.json with the reference's defaults, reporting a wrong
/// or contradictory key with the file and key.
public struct ConfigReader: Sendable {
    public let file: String
    public let json: JSONValue

    public init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ChiselError(.io, "cannot read config", file: file)
        }
        try self.init(json: JSONParser.parse(Array(data), file: file), file: file)
    }

    public init(json: JSONValue, file: String) throws {
        guard json.members != nil else { throw ChiselError(.model, "config is not a JSON object", file: file) }
        self.json = json
        self.file = file
    }

    public func failure(_ key: String, _ message: String) -> ChiselError {
        ChiselError(.model, "config key '\(key)' \(message)", file: file)
    }

    public func has(_ key: String) -> Bool {
        if let value = json[key], value != .null { return true }
        return false
    }

    public func int(_ key: String, default value: Int? = nil) throws -> Int {
        switch json[key] {
        case .int(let i)?: return i
        case .double(let d)? where d == d.rounded(): return Int(d)
        case nil, .null?:
            guard let value else { throw failure(key, "is missing") }
            return value
        case let other?: throw failure(key, "must be an integer, got \(other.kindDescription)")
        }
    }

    /// A size: an integer that must be at least 1 (so later arithmetic never divides by zero or
    /// builds an empty network).
    public func size(_ key: String, default value: Int? = nil) throws -> Int {
        let n = try int(key, default: value)
        guard n >= 1 else { throw failure(key, "must be at least 1, got \(n)") }
        return n
    }

    /// A non-empty list of sizes, or one size repeated `count` times.
    public func sizes(_ key: String, count: Int? = nil, default value: [Int]? = nil) throws -> [Int] {
        let list: [Int]
        if let count {
            list = try intOrList(key, count: count, default: value?.first)
        } else {
            list = try ints(key, default: value)
        }
        guard !list.isEmpty, list.allSatisfy({ $0 >= 1 }) else {
            throw failure(key, "must be a non-empty list of sizes of at least 1, got \(list)")
        }
        return list
    }

    public func double(_ key: String, default value: Double? = nil) throws -> Double {
        switch json[key] {
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        case nil, .null?:
            guard let value else { throw failure(key, "is missing") }
            return value
        case let other?: throw failure(key, "must be a number, got \(other.kindDescription)")
        }
    }

    public func bool(_ key: String, default value: Bool) throws -> Bool {
        switch json[key] {
        case .bool(let b)?: return b
        case nil, .null?: return value
        case let other?: throw failure(key, "must be true or false, got \(other.kindDescription)")
        }
    }

    public func string(_ key: String, default value: String? = nil) throws -> String {
        switch json[key] {
        case .string(let s)?: return s
        case nil, .null?:
            guard let value else { throw failure(key, "is missing") }
            return value
        case let other?: throw failure(key, "must be a string, got \(other.kindDescription)")
        }
    }

    public func optionalString(_ key: String) throws -> String? {
        has(key) ? try string(key) : nil
    }

    public func doubles(_ key: String) throws -> [Double] {
        guard case .array(let items)? = json[key] else {
            throw failure(key, json[key] == nil ? "is missing" : "must be a list of numbers")
        }
        return try items.map { item in
            switch item {
            case .int(let i): return Double(i)
            case .double(let d): return d
            default: throw failure(key, "must be a list of numbers")
            }
        }
    }

    public func ints(_ key: String, default value: [Int]? = nil) throws -> [Int] {
        switch json[key] {
        case .array(let items)?:
            return try items.map { item in
                guard case .int(let i) = item else { throw failure(key, "must be a list of integers") }
                return i
            }
        case nil, .null?:
            guard let value else { throw failure(key, "is missing") }
            return value
        case let other?: throw failure(key, "must be a list, got \(other.kindDescription)")
        }
    }

    /// An int or a list of ints, repeated to `count` when a single int is given.
    public func intOrList(_ key: String, count: Int, default value: Int? = nil) throws -> [Int] {
        switch json[key] {
        case .int(let i)?: return Array(repeating: i, count: count)
        case .array?:
            let list = try ints(key)
            guard list.count == count else { throw failure(key, "has \(list.count) entries, expected \(count)") }
            return list
        case nil, .null?:
            guard let value else { throw failure(key, "is missing") }
            return Array(repeating: value, count: count)
        case let other?: throw failure(key, "must be an integer or a list, got \(other.kindDescription)")
        }
    }

    public func strings(_ key: String, default value: [String]? = nil) throws -> [String] {
        switch json[key] {
        case .array(let items)?:
            return try items.map { item in
                guard let s = item.stringValue else { throw failure(key, "must be a list of strings") }
                return s
            }
        case nil, .null?:
            guard let value else { throw failure(key, "is missing") }
            return value
        case let other?: throw failure(key, "must be a list, got \(other.kindDescription)")
        }
    }
}
