/// A checkpoint's stored tensor names → the network's names, as a table of small rules applied
/// in order (the first that matches wins), instead of renaming code scattered through loaders.
///
/// A pattern is a name prefix in which `#` stands for a decimal index; the rule's target gets
/// the indices and returns the new prefix, or nil when the rule does not apply to them. The
/// rest of the name is then renamed by the rule's `inner` table, if any, and appended.
struct NameRules: Sendable {
    enum Unmatched: Sendable {
        /// Keep a name no rule matches, as is.
        case keep
        /// Leave the tensor out.
        case drop
    }

    struct Rule: Sendable {
        let pattern: [Substring]
        let target: @Sendable ([Int]) -> String?
        let inner: NameRules?
        /// For a stored tensor that holds several of the network's, stacked along the first
        /// dimension (OpenCLIP's fused q/k/v): the names of the parts, in order; empty drops it.
        let parts: [String]?
        /// A 2-D stored tensor kept as (rows × columns) where the network wants its transpose
        /// (OpenCLIP's `text_projection`, applied as x·P, against a Linear weight).
        var transposed = false
    }

    var rules: [Rule]
    var unmatched: Unmatched

    init(unmatched: Unmatched, _ rules: [Rule]) {
        self.rules = rules
        self.unmatched = unmatched
    }

    /// The network names a stored name provides: none, one, or several parts of a stacked tensor.
    func rename(_ name: String) -> [WeightName] {
        for rule in rules {
            guard let (indices, rest) = Self.match(rule.pattern, name), let target = rule.target(indices) else { continue }
            if let parts = rule.parts {
                if parts.isEmpty { return [] }
                guard rest.isEmpty else { continue }
                return parts.enumerated().map { WeightName(name: target + $0.element, part: $0.offset, of: parts.count) }
            }
            guard let inner = rule.inner else { return [WeightName(name: target + rest, transposed: rule.transposed)] }
            return inner.rename(String(rest)).map { WeightName(name: target + $0.name, part: $0.part, of: $0.parts) }
        }
        return unmatched == .keep ? [WeightName(name: name)] : []
    }

    /// The indices `#` matched and what follows the pattern, or nil when `name` does not start with it.
    static func match(_ pattern: [Substring], _ name: String) -> ([Int], Substring)? {
        var rest = Substring(name)
        var indices: [Int] = []
        for (i, literal) in pattern.enumerated() {
            if i > 0 {
                let digits = rest.prefix { $0.isASCII && $0.isNumber }
                guard !digits.isEmpty, let index = Int(digits) else { return nil }
                indices.append(index)
                rest = rest.dropFirst(digits.count)
            }
            guard rest.hasPrefix(literal) else { return nil }
            rest = rest.dropFirst(literal.count)
        }
        return (indices, rest)
    }
}

/// A network tensor name, and for a stacked stored tensor which part of it this is.
public struct WeightName: Sendable, Equatable {
    public var name: String
    /// Part `part` of `parts` equal slices along the stored tensor's first dimension.
    public var part: Int
    public var parts: Int
    /// The stored 2-D tensor is the network's transposed.
    public var transposed: Bool

    public init(name: String, part: Int = 0, of parts: Int = 1, transposed: Bool = false) {
        self.name = name
        self.part = part
        self.parts = parts
        self.transposed = transposed
    }
}

extension NameRules.Rule {
    /// Stored names starting with `pattern` become `target(indices)` + the rest.
    static func prefix(_ pattern: String, inner: NameRules? = nil,
                       _ target: @escaping @Sendable ([Int]) -> String?) -> NameRules.Rule {
        NameRules.Rule(pattern: pattern.split(separator: "#", omittingEmptySubsequences: false), target: target, inner: inner, parts: nil)
    }

    /// Stored names starting with `pattern` become `target` + the rest.
    static func prefix(_ pattern: String, _ target: String, inner: NameRules? = nil) -> NameRules.Rule {
        prefix(pattern, inner: inner) { _ in target }
    }

    /// The stored name `name` splits along its first dimension into `parts`.
    static func split(_ name: String, into parts: [String]) -> NameRules.Rule {
        NameRules.Rule(pattern: [Substring(name)], target: { _ in "" }, inner: nil, parts: parts)
    }

    /// The stored 2-D tensor `name` is the network's `target`, transposed.
    static func transposed(_ name: String, _ target: String) -> NameRules.Rule {
        var rule = NameRules.Rule(pattern: [Substring(name)], target: { _ in target }, inner: nil, parts: nil)
        rule.transposed = true
        return rule
    }

    /// Stored names starting with `pattern` are left out.
    static func drop(_ pattern: String) -> NameRules.Rule {
        NameRules.Rule(pattern: pattern.split(separator: "#", omittingEmptySubsequences: false), target: { _ in "" }, inner: nil, parts: [])
    }
}
