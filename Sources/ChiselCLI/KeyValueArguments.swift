import ArgumentParser
import ChiselCore

/// `NAME=VALUE` on the command line (`--var`, `--hint`): VALUE as JSON when it parses as a JSON
/// scalar, a plain string otherwise. A malformed one is a command-line error (exit 64).
struct KeyValueArgument: ExpressibleByArgument, Sendable {
    var key: String
    var value: JSONValue

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else { return nil }
        key = String(argument[..<equals])
        value = parseLooseJSON(String(argument[argument.index(after: equals)...]))
    }

    /// The arguments as a dictionary; a key given twice keeps its last value.
    static func dictionary(_ arguments: [KeyValueArgument]) -> [String: JSONValue] {
        Dictionary(arguments.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

/// `--set NODE.PARAM=VALUE`; a malformed one is a command-line error (exit 64).
extension ParamOverride: ExpressibleByArgument {
    public init?(argument: String) {
        guard let parsed = try? ParamOverride.parse(argument) else { return nil }
        self = parsed
    }
}
