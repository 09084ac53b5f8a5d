import ChiselCore
import ChiselModels

/// What validation can learn of a graph's checkpoint without loading it: the configs (a
/// folder's config.json files, a single file's tensor shapes). Nil when the checkpoint cannot
/// be read; the loader reports why when the graph runs.
struct CheckpointFacts {
    var unetChannels: Int
    var latentChannels: Int
    var contextWidth: Int

    init?(_ source: StageCheck.Source?) {
        guard case .model(let spec)? = source else { return nil }
        let hints = Dictionary((spec.options["hints"]?.members ?? []).map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard let checkpoint = try? StableDiffusionSource(path: spec.path, hints: hints),
            let unet = try? checkpoint.unet().config, let vae = try? checkpoint.vae().config
        else { return nil }
        unetChannels = unet.inChannels
        latentChannels = vae.latentChannels
        contextWidth = unet.crossAttentionDim
    }

    var isNineChannelInpainting: Bool { unetChannels == 2 * latentChannels + 1 }
}
