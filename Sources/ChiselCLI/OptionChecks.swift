import ArgumentParser
import ChiselCore
import Foundation

extension Seed {
    /// `--seed`: -1 draws one at random (reported), else any seed PyTorch's `manual_seed` takes,
    /// 0…18446744073709551615.
    static func parse(_ argument: String) throws -> Seed {
        if argument == "-1" { return .random }
        if let seed = UInt64(argument) { return .fixed(seed) }
        throw ValidationError("a seed is -1 (drawn at random) or an integer in 0…\(UInt64.max)")
    }
}

/// Command-line options checked against the stage parameters they set: a value out of the
/// parameter's range, NaN or infinity is a wrong command line (exit 64) whose message names the
/// option and the range, before any graph is built.
enum OptionCheck {
    static func check(_ value: Double?, _ option: String, _ key: any ParamKey) throws {
        guard let value else { return }
        try check(value, option, range: key.spec.range)
    }

    static func check(_ value: Int?, _ option: String, _ key: any ParamKey) throws {
        guard let value else { return }
        try check(Double(value), option, range: key.spec.range, shown: String(value))
    }

    /// `value` for `option` within `range` (and finite).
    static func check(_ value: Double, _ option: String, range: ClosedRange<Double>?, shown: String? = nil) throws {
        let text = shown ?? (value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)")
        let allowed = range.map { " (allowed: \(ParamSpec.format(bound: $0.lowerBound))…\(ParamSpec.format(bound: $0.upperBound)))" } ?? ""
        if value.isNaN { throw ValidationError("\(option) nan is not a number\(allowed)") }
        if value.isInfinite { throw ValidationError("\(option) \(value < 0 ? "-" : "")inf is infinite\(allowed)") }
        if let range, !range.contains(value) { throw ValidationError("\(option) \(text) is out of range\(allowed)") }
    }

    /// The command line with each negative number that follows an option joined to it
    /// (`--seed -1` → `--seed=-1`), which the argument parser would otherwise read as an option.
    static func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let argument = arguments[i]
            if argument.hasPrefix("--"), argument.count > 2, !argument.contains("="), i + 1 < arguments.count,
                isNegativeNumber(arguments[i + 1])
            {
                out.append(argument + "=" + arguments[i + 1])
                i += 2
                continue
            }
            if argument == "--" {
                out += arguments[i...]
                break
            }
            out.append(argument)
            i += 1
        }
        return out
    }

    static func isNegativeNumber(_ text: String) -> Bool {
        guard text.hasPrefix("-"), text.count > 1 else { return false }
        let body = text.dropFirst().lowercased()
        if body == "inf" || body == "infinity" || body == "nan" { return true }
        return Double(body) != nil && (body.first?.isNumber == true || body.first == ".")
    }
}
