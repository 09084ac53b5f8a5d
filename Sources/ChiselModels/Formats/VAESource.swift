import ChiselBase
import ChiselTensor
import Foundation

/// A VAE to use instead of a checkpoint's own: a diffusers `AutoencoderKL` or `AutoencoderTiny`
/// folder (`config.json` + weights; a pipeline folder's `vae/` too), or TAESD's original pair of
/// files (`taesd_encoder.safetensors` + `taesd_decoder.safetensors`, either named, the other
/// found beside it; `taesd2_…` likewise).
public enum VAESource {
    /// Whether `path` is a VAE on its own: a folder whose config.json names a VAE class, or a
    /// TAESD encoder or decoder file.
    public static func isVAE(path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        if name.hasSuffix(".safetensors") { return name.hasPrefix("taesd") && (name.contains("_encoder") || name.contains("_decoder")) }
        guard let config = try? ConfigReader(file: path + "/config.json"),
              let className = try? config.string("_class_name", default: "") else { return false }
        return className == "AutoencoderKL" || className == "AutoencoderTiny"
    }

    /// The diffusers class of the VAE at `path` (`AutoencoderKL`, `AutoencoderTiny`), read
    /// without loading it; nil when it is neither or cannot be read.
    public static func className(path: String) -> String? {
        let name = (path as NSString).lastPathComponent
        if name.hasSuffix(".safetensors") { return isVAE(path: path) ? "AutoencoderTiny" : nil }
        let folder = FileManager.default.fileExists(atPath: path + "/config.json") ? path : path + "/vae"
        guard let config = try? ConfigReader(file: folder + "/config.json"),
              let className = try? config.string("_class_name", default: "AutoencoderKL"),
              className == "AutoencoderKL" || className == "AutoencoderTiny" else { return nil }
        return className
    }

    public static func load(path: String, precision: Precision) throws -> any LatentAutoencoder {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ChiselError(.io, "no such VAE file or folder", file: path)
        }
        if !isFolder.boolValue { return try taesdPair(path, precision: precision) }
        let folder = FileManager.default.fileExists(atPath: path + "/config.json") || !FileManager.default.fileExists(atPath: path + "/vae")
            ? path : path + "/vae"
        let component = try DiffusersComponent(folder: folder, base: "diffusion_pytorch_model")
        let className = try component.config.string("_class_name", default: "AutoencoderKL")
        switch className {
        case "AutoencoderKL":
            return try AutoencoderKL(config: try VAEConfig(reader: component.config), weights: component.weights, precision: precision)
        case "AutoencoderTiny":
            return try AutoencoderTiny(config: try TinyAutoencoderConfig(reader: component.config), weights: component.weights,
                                       precision: precision)
        default:
            throw component.config.failure("_class_name", "'\(className)' is not a VAE Chisel can use (AutoencoderKL, AutoencoderTiny)")
        }
    }

    /// TAESD as its author ships it: two files of `nn.Sequential` weights named by layer index.
    /// The decoder's index 0 is its clamp, so its layer N is diffusers' `decoder.layers.N-1`.
    static func taesdPair(_ path: String, precision: Precision) throws -> any LatentAutoencoder {
        let name = (path as NSString).lastPathComponent
        guard path.hasSuffix(".safetensors"), name.contains("_encoder") || name.contains("_decoder") else {
            throw ChiselError(.model, "a VAE file must be TAESD's taesd_encoder/taesd_decoder .safetensors; other VAEs "
                              + "are read from a diffusers folder (config.json + diffusion_pytorch_model.safetensors)", file: path)
        }
        let encoderPath = path.replacingOccurrences(of: "_decoder", with: "_encoder")
        let decoderPath = path.replacingOccurrences(of: "_encoder", with: "_decoder")
        for file in [encoderPath, decoderPath] where !FileManager.default.fileExists(atPath: file) {
            throw ChiselError(.io, "TAESD needs its encoder and decoder files side by side; this one is missing", file: file)
        }
        let encoder = try SafeTensorsFile(path: encoderPath), decoder = try SafeTensorsFile(path: decoderPath)
        let weights = CombinedWeights(parts: [
            ("encoder.layers.", try SafeTensorsWeights(files: [encoder], source: encoderPath)),
            ("decoder.layers.", try SafeTensorsWeights(files: [decoder], source: decoderPath, rename: { name in
                guard let dot = name.firstIndex(of: "."), let index = Int(name[..<dot]), index >= 1 else { return nil }
                return "\(index - 1)" + name[dot...]
            })),
        ])
        let config = try ConfigReader(json: try taesdConfig(encoder: encoder, decoder: decoder), file: "\(path) (read off the layers)")
        let tiny = try TinyAutoencoderConfig(reader: config)
        return try AutoencoderTiny(config: tiny, weights: weights, precision: precision)
    }
}

extension VAESource {
    /// The AutoencoderTiny config of a TAESD pair, read off its layers: per level, the residual
    /// blocks (layers with `conv.0.weight`) between plain convolutions; the widths and the
    /// latent channels from the convolutions' shapes.
    static func taesdConfig(encoder: SafeTensorsFile, decoder: SafeTensorsFile) throws -> JSONValue {
        func layers(_ file: SafeTensorsFile) -> [(index: Int, block: Bool)] {
            var found: [Int: Bool] = [:]
            for name in file.names {
                guard let dot = name.firstIndex(of: "."), let index = Int(name[..<dot]) else { continue }
                found[index] = (found[index] ?? false) || name[dot...].hasPrefix(".conv.0.")
            }
            return found.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        func fail(_ file: SafeTensorsFile, _ message: String) -> ChiselError { ChiselError(.model, message, file: file.path) }
        // Encoder: conv, blocks, [stride-2 conv, blocks]…, conv to the latent.
        let e = layers(encoder)
        guard let first = e.first, let last = e.last, !first.block, !last.block, e.count >= 3 else {
            throw fail(encoder, "not a TAESD encoder: its layers are not convolutions and residual blocks")
        }
        var encoderBlocks: [Int] = []
        for layer in e.dropLast() { if layer.block { encoderBlocks[encoderBlocks.count - 1] += 1 } else { encoderBlocks.append(0) } }
        // Decoder: clamp, conv, ReLU, then per level blocks and (but for the last) an upsampling and a conv.
        let d = layers(decoder)
        guard let head = d.first, !head.block, let tail = d.last, !tail.block else {
            throw fail(decoder, "not a TAESD decoder: its layers are not convolutions and residual blocks")
        }
        var decoderBlocks = [0]
        for layer in d.dropFirst() { if layer.block { decoderBlocks[decoderBlocks.count - 1] += 1 } else { decoderBlocks.append(0) } }
        decoderBlocks.removeLast()
        let width = try encoder.info("\(first.index).weight").shape.first ?? 0
        let latent = try encoder.info("\(last.index).weight").shape.first ?? 0
        guard encoderBlocks.count == decoderBlocks.count, width > 0, latent > 0 else {
            throw fail(decoder, "its \(decoderBlocks.count) levels do not match the encoder's \(encoderBlocks.count)")
        }
        let widths = JSONValue.array(Array(repeating: .int(width), count: encoderBlocks.count))
        return .object([
            JSONMember(key: "latent_channels", value: .int(latent)),
            JSONMember(key: "encoder_block_out_channels", value: widths),
            JSONMember(key: "decoder_block_out_channels", value: widths),
            JSONMember(key: "num_encoder_blocks", value: .array(encoderBlocks.map { .int($0) })),
            JSONMember(key: "num_decoder_blocks", value: .array(decoderBlocks.map { .int($0) })),
        ])
    }
}

/// Several weight stores under name prefixes, as one.
struct CombinedWeights: WeightStore {
    let parts: [(prefix: String, store: SafeTensorsWeights)]

    init(parts: [(String, SafeTensorsWeights)]) { self.parts = parts.map { (prefix: $0.0, store: $0.1) } }

    var source: String { parts.map(\.store.source).joined(separator: " + ") }

    private func locate(_ name: String) -> (any WeightStore, String)? {
        for part in parts where name.hasPrefix(part.prefix) {
            let inner = String(name.dropFirst(part.prefix.count))
            if part.store.contains(inner) { return (part.store, inner) }
        }
        return nil
    }

    func contains(_ name: String) -> Bool { locate(name) != nil }

    func shape(_ name: String) throws -> [Int] {
        guard let (store, inner) = locate(name) else { throw ChiselError(.model, "missing tensor", file: source, tensor: name) }
        return try store.shape(inner)
    }

    func floats(_ name: String) throws -> [Float] {
        guard let (store, inner) = locate(name) else { throw ChiselError(.model, "missing tensor", file: source, tensor: name) }
        return try store.floats(inner)
    }
}
