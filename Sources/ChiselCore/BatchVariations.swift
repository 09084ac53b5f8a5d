import Foundation

/// How the items of a batch differ besides their files: a prompt per image from a same-named
/// text file, and seeds per item.
public struct BatchVariations: Sendable, Equatable {
    public enum Seeds: String, Sendable, CaseIterable {
        /// Every explicit `seed` parameter (≥ 0) plus the item's index, as AUTOMATIC1111's batches do.
        case increment
        /// The same seeds for every item.
        case fixed
    }

    /// A string parameter (`node.param`) each item takes from `<image stem>.txt` beside its image,
    /// when that file exists; without one the graph's value stays.
    public var textParam: (node: String, param: String)?
    public var seeds: Seeds

    public init(textParam: (node: String, param: String)? = nil, seeds: Seeds = .increment) {
        self.textParam = textParam
        self.seeds = seeds
    }

    public static func == (a: BatchVariations, b: BatchVariations) -> Bool {
        a.seeds == b.seeds && a.textParam?.node == b.textParam?.node && a.textParam?.param == b.textParam?.param
    }

    /// Checks that the text parameter names a string parameter of a node of `plan`.
    public func check(_ plan: Plan) throws {
        guard let (node, param) = textParam else { return }
        guard let i = plan.index(of: node) else {
            throw ChiselError(.invalidArgument, "\(node).\(param): no node '\(node)'", file: plan.file)
        }
        guard let spec = plan.nodes[i].schema.param(param), spec.type == .string else {
            throw ChiselError(.invalidArgument, "\(node).\(param): stage '\(plan.nodes[i].schema.name)' "
                              + "has no string parameter '\(param)'", file: plan.file)
        }
    }

    /// What the user should hear about an item: a prompt file that is missing, so the graph's
    /// own prompt is used for it.
    func warning(for item: BatchItem) -> (node: String, message: String)? {
        guard let (node, param) = textParam else { return nil }
        let text = URL(fileURLWithPath: item.image).deletingPathExtension().appendingPathExtension("txt").path
        guard !FileManager.default.fileExists(atPath: text) else { return nil }
        return (node, "no \((text as NSString).lastPathComponent) beside \((item.image as NSString).lastPathComponent): "
                + "its \(param) is the graph's")
    }

    func apply(to plan: inout Plan, item: BatchItem) throws {
        if let (node, param) = textParam {
            let text = URL(fileURLWithPath: item.image).deletingPathExtension().appendingPathExtension("txt").path
            if let data = FileManager.default.contents(atPath: text) {
                let prompt = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                try plan.setParam(param, of: node, to: .string(prompt))
            }
        }
        if seeds == .increment, item.index > 0 {
            for node in plan.nodes {
                // Seeds are the parameters declared with `Seed`'s range, whatever a stage calls them.
                for spec in node.schema.params where spec.range == Seed.range {
                    if let seed = Seed.read(node.params[spec.name]), seed != .random,
                        let value = seed.advanced(by: item.index).paramValue
                    {
                        try plan.setParam(spec.name, of: node.id, to: value)
                    }
                }
            }
        }
    }
}
