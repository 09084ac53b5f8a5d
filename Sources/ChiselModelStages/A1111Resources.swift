import ChiselCore
import ChiselModels
import Foundation

/// The files a Stable Diffusion run used, in AUTOMATIC1111's infotext: `Model hash` (the first 10
/// hex digits of the checkpoint file's SHA-256; folders have none), `VAE hash` and `VAE` for a
/// VAE given in place of the checkpoint's, each LoRA as `<lora:NAME:SCALE>` in the prompt (A1111
/// reads LoRAs from the prompt) with `Lora hashes`, and the embeddings the prompts use with `TI
/// hashes`. A file that cannot be hashed leaves its hash out.
enum A1111Resources {
    static func stem(_ path: String) -> String {
        let name = (path as NSString).lastPathComponent
        for suffix in [".safetensors", ".ckpt", ".pt", ".bin"] where name.lowercased().hasSuffix(suffix) {
            return String(name.dropLast(suffix.count))
        }
        return name
    }

    static func scale(_ value: Float) -> String { String(format: "%g", Double(value)) }

    /// The prompt with a `<lora:NAME:SCALE>` tag for each LoRA it does not already name.
    static func prompt(_ prompt: String, model: StableDiffusionModel) -> String {
        let tags = model.loras.map { "<lora:\(stem($0.file.path)):\(scale($0.scale))>" }.filter { !prompt.contains($0) }
        guard !tags.isEmpty else { return prompt }
        return ([prompt] + tags).filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// `Model hash` (single files only) and `Model`, then the VAE given in place of the checkpoint's.
    static func model(_ model: StableDiffusionModel) -> [GenerationInfo.Setting] {
        var settings: [GenerationInfo.Setting] = []
        if FileHash.isFile(model.path), let hash = try? FileHash.hex(.sha256, of: model.path) {
            settings.append(GenerationInfo.Setting("Model hash", String(hash.prefix(10))))
        }
        settings.append(GenerationInfo.Setting("Model", model.name))
        if let vae = model.vaePath {
            if FileHash.isFile(vae), let hash = try? FileHash.hex(.sha256, of: vae) {
                settings.append(GenerationInfo.Setting("VAE hash", String(hash.prefix(10))))
            }
            settings.append(GenerationInfo.Setting("VAE", (vae as NSString).lastPathComponent))
        }
        return settings
    }

    /// `Lora hashes` and `TI hashes` (the embeddings whose tokens the prompts use).
    static func networks(_ model: StableDiffusionModel, prompts: [String]) -> [GenerationInfo.Setting] {
        var settings: [GenerationInfo.Setting] = []
        let loras = model.loras.compactMap { lora -> String? in
            let kind: FileHash.Kind = lora.file.path.lowercased().hasSuffix(".safetensors") ? .addnet : .sha256
            return (try? FileHash.hex(kind, of: lora.file.path)).map { "\(stem(lora.file.path)): \($0.prefix(12))" }
        }
        if !loras.isEmpty { settings.append(GenerationInfo.Setting("Lora hashes", loras.joined(separator: ", "))) }
        let used = model.embeddings.filter { embedding in prompts.contains { $0.contains(embedding.token) } }
        let embeddings = used.compactMap { embedding in
            (try? FileHash.hex(.sha256, of: embedding.path)).map { "\(embedding.token): \($0.prefix(12))" }
        }
        if !embeddings.isEmpty { settings.append(GenerationInfo.Setting("TI hashes", embeddings.joined(separator: ", "))) }
        return settings
    }
}
