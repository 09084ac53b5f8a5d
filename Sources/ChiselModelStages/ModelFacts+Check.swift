import ChiselCore
import ChiselModels

extension ModelFacts {
    /// The facts of the model a node's input comes from, as validation sees it: the graph's
    /// model entry (its path, `hints` and `vae`). Nil when the input is not a model or its
    /// configs cannot be read; the loader reports why when the graph runs.
    init?(_ source: StageCheck.Source?) {
        guard case .model(let spec)? = source else { return nil }
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard var facts = try? ModelFacts(path: spec.path, hints: hints, vae: spec.options["vae"]?.stringValue) else { return nil }
        // The entry's scheduler_config keys replace the checkpoint's, as the loader applies them.
        if case .stableDiffusion(var sd) = facts, let keys = spec.options["scheduler_config"],
            let overrides = try? StableDiffusionLoader.schedulerOverrides(keys)
        {
            sd.scheduler = sd.scheduler.overridden(by: overrides)
            facts = .stableDiffusion(sd)
        }
        self = facts
    }
}
