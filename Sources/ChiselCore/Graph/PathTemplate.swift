/// A save path with placeholders, such as `out/{stem}-{index:04}.png`.
///
/// Placeholders: `{stem}` (the run's input file name without extension), `{index}` (the batch
/// item's number, 0 in a single run; `{index:04}` pads with zeros), `{node}` (the saving node's
/// id) and `{NODE.stem}` (the stem of the file loaded by node NODE). `{{` and `}}` stand for
/// literal braces.
public struct PathTemplate: Sendable, Equatable {
    public enum Segment: Sendable, Equatable {
        case literal(String)
        case stem
        case index(width: Int)
        case node
        case nodeStem(String)
    }

    public let segments: [Segment]

    public init(_ text: String) throws {
        var segments: [Segment] = []
        var literal = ""
        var rest = Substring(text)
        while let c = rest.first {
            if c == "{" && rest.dropFirst().first == "{" {
                literal.append("{")
                rest = rest.dropFirst(2)
            } else if c == "}" && rest.dropFirst().first == "}" {
                literal.append("}")
                rest = rest.dropFirst(2)
            } else if c == "{" {
                guard let close = rest.firstIndex(of: "}") else {
                    throw ChiselError(.invalidParameter, "unclosed '{' in path template \"\(text)\"")
                }
                let name = String(rest[rest.index(after: rest.startIndex)..<close])
                if !literal.isEmpty { segments.append(.literal(literal)); literal = "" }
                segments.append(try PathTemplate.placeholder(name, in: text))
                rest = rest[rest.index(after: close)...]
            } else if c == "}" {
                throw ChiselError(.invalidParameter, "unmatched '}' in path template \"\(text)\" (write '}}' for a brace)")
            } else {
                literal.append(c)
                rest = rest.dropFirst()
            }
        }
        if !literal.isEmpty { segments.append(.literal(literal)) }
        self.segments = segments
    }

    private static func placeholder(_ name: String, in text: String) throws -> Segment {
        switch name {
        case "stem": return .stem
        case "node": return .node
        case "index": return .index(width: 0)
        default: break
        }
        if name.hasPrefix("index:"), let width = Int(name.dropFirst(6)), (0...12).contains(width) {
            return .index(width: width)
        }
        if name.hasSuffix(".stem"), name.count > 5 {
            return .nodeStem(String(name.dropLast(5)))
        }
        throw ChiselError(.invalidParameter,
            "unknown placeholder {\(name)} in path template \"\(text)\"; use {stem}, {index}, {index:04}, {node} or {NODE.stem}")
    }

    /// The nodes named by `{NODE.stem}` placeholders.
    public var referencedNodes: [String] {
        segments.compactMap { if case .nodeStem(let node) = $0 { node } else { nil } }
    }

    public var hasPlaceholders: Bool {
        segments.contains { if case .literal = $0 { false } else { true } }
    }

    /// Fills the placeholders for one node of one run.
    public func expand(run: RunInfo, node: String, origin: ImageOrigin?) throws -> String {
        var out = ""
        for segment in segments {
            switch segment {
            case .literal(let text): out += text
            case .stem: out += run.stem ?? origin?.stem ?? "output"
            case .index(let width):
                let digits = String(run.index)
                out += String(repeating: "0", count: max(0, width - digits.count)) + digits
            case .node: out += node
            case .nodeStem(let loader):
                guard let path = run.loadedFiles[loader] else {
                    throw ChiselError(.invalidParameter, "{\(loader).stem} names no loader node of this graph", node: node)
                }
                out += ImageOrigin(path: path).stem
            }
        }
        return out
    }
}
