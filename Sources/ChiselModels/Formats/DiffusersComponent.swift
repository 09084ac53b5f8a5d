import ChiselBase
import Foundation

/// One component folder of a diffusers pipeline (`unet/`, `vae/`, `text_encoder/`): its
/// config and its weights, in any of the file layouts diffusers and transformers write.
public struct DiffusersComponent: Sendable {
    public let folder: String
    public let config: ConfigReader
    public let weights: SafeTensorsWeights
    /// The weight files read.
    public let files: [String]

    /// `base` is `diffusion_pytorch_model` or `model`. Tries, in order: the plain file, the
    /// `variant` file (e.g. `.fp16`), their sharded `*.safetensors.index.json` forms; with no
    /// variant asked for, an fp16 variant is used when it is all there is.
    public init(folder: String, base: String, variant: String? = nil, rename: @escaping (String) -> String? = { $0 }) throws {
        self.folder = folder
        let manager = FileManager.default
        var isFolder: ObjCBool = false
        guard manager.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            throw ChiselError(.model, "component folder is missing", file: folder)
        }
        config = try ConfigReader(file: folder + "/config.json")
        let variants = variant.map { [$0] } ?? [nil, "fp16"]
        var found: [String]?
        for v in variants {
            let suffix = v.map { ".\($0)" } ?? ""
            let single = "\(folder)/\(base)\(suffix).safetensors"
            if manager.fileExists(atPath: single) { found = [single]; break }
            for index in ["\(folder)/\(base).safetensors.index\(suffix).json", "\(folder)/\(base)\(suffix).safetensors.index.json"]
            where manager.fileExists(atPath: index) {
                found = try DiffusersComponent.shards(index: index, folder: folder)
                break
            }
            if found != nil { break }
        }
        guard let files = found else {
            let names = (try? manager.contentsOfDirectory(atPath: folder)) ?? []
            if let pickle = names.first(where: { $0.hasSuffix(".bin") || $0.hasSuffix(".ckpt") || $0.hasSuffix(".pt") }) {
                try CheckpointFormat.refuseUnsafe(folder + "/" + pickle)
            }
            throw ChiselError(.model, "no \(base).safetensors (or variant or sharded index) in the folder", file: folder)
        }
        self.files = files
        weights = try SafeTensorsWeights(files: files.map { try SafeTensorsFile(path: $0) }, source: folder, rename: rename)
    }

    /// The shard files an index names, each checked to exist.
    static func shards(index: String, folder: String) throws -> [String] {
        let reader = try ConfigReader(file: index)
        guard let map = reader.json["weight_map"]?.members else {
            throw ChiselError(.model, "sharded index has no weight_map object", file: index)
        }
        var files: [String] = []
        for member in map {
            guard let name = member.value.stringValue, !name.contains("/"), !name.hasPrefix(".") else {
                throw ChiselError(.model, "weight_map entry for '\(member.key)' is not a file name", file: index,
                                  tensor: member.key)
            }
            let path = folder + "/" + name
            if !files.contains(path) { files.append(path) }
        }
        for path in files where !FileManager.default.fileExists(atPath: path) {
            throw ChiselError(.model, "shard named in the index is missing", file: path)
        }
        return files
    }
}
