import ChiselCore
import ChiselModels
import Foundation

extension ModelFacts {
    /// The facts of the model a node's input comes from, as validation sees it: the graph's
    /// model entry (its path, `hints`, `vae` and `scheduler_config`). Nil when the input is not
    /// a model or its configs cannot be read; the loader reports why when the graph runs.
    ///
    /// Every model node of a graph asks for the same entry, so the facts are read once per entry
    /// and checkpoint modification time.
    init?(_ source: StageCheck.Source?) {
        guard case .model(let spec)? = source else { return nil }
        let modified = (try? FileManager.default.attributesOfItem(atPath: spec.path)[.modificationDate] as? Date)??
            .timeIntervalSince1970 ?? 0
        let key = spec.path + "\u{0}" + String(modified) + "\u{0}"
            + JSONValue.object(spec.options.sorted { $0.key < $1.key }.map { JSONMember(key: $0.key, value: $0.value) }).serialized()
        if let known = Self.read.withLock({ $0[key] }) {
            guard let facts = known else { return nil }
            self = facts
            return
        }
        let facts = Self.facts(of: spec)
        Self.read.withLock { $0[key] = facts }
        guard let facts else { return nil }
        self = facts
    }

    /// Facts already read, by model entry; nil for an entry whose configs could not be read.
    private static let read = Locked<[String: ModelFacts?]>([:])

    private static func facts(of spec: ModelSpec) -> ModelFacts? {
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard var facts = try? ModelFacts(path: spec.path, hints: hints, vae: spec.options["vae"]?.stringValue) else { return nil }
        // The entry's scheduler_config keys replace the checkpoint's, as the loader applies them.
        if case .stableDiffusion(var sd) = facts, let keys = spec.options["scheduler_config"],
            let overrides = try? StableDiffusionLoader.schedulerOverrides(keys)
        {
            sd.scheduler = sd.scheduler.overridden(by: overrides)
            facts = .stableDiffusion(sd)
        }
        return facts
    }
}
