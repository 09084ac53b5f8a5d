import ChiselBase
import Foundation

/// A LoRA file (low-rank adaptation, Hu et al. 2021) for a Stable Diffusion 1.x/2.x UNet and
/// text encoder, in the formats people download:
///
/// - kohya / AUTOMATIC1111: `lora_unet_<module>.lora_down.weight`, `.lora_up.weight` and an
///   optional `.alpha`, with `lora_te_<module>` for the text encoder; convolution layers
///   (LoCon) carry 4-D weights. LCM-LoRA ships in this format.
/// - diffusers / PEFT: `unet.<module>.lora_A.weight` and `.lora_B.weight` (and
///   `text_encoder.<module>`), with the adapter's rank and alpha in the file's
///   `lora_adapter_metadata` when diffusers wrote one; also diffusers' older
///   `<module>.processor.to_q_lora.down.weight` spelling.
///
/// Each layer adds `scale × alpha / rank × up · down` to the weight it adapts (diffusers'
/// `fuse_lora`); with no alpha in the file, alpha is the rank, as diffusers reads such files.
public struct LoRAFile: Sendable {
    public enum Format: String, Sendable {
        case kohya = "kohya / AUTOMATIC1111"
        case peft = "diffusers / PEFT"
    }

    /// The network a layer adapts.
    public enum Component: String, Sendable, CaseIterable {
        case unet
        case textEncoder = "text_encoder"
        /// SDXL's second text encoder (`lora_te2_…`, `text_encoder_2.…`).
        case textEncoder2 = "text_encoder_2"
    }

    /// One adapted layer: its name in the file, its factors, and the factor applied to up · down.
    public struct Layer: Sendable {
        public let component: Component
        /// The module as the file names it, with `_` or `.` separators (matched against the
        /// network's own names when merged).
        public let module: String
        public let down: String, up: String
        public let downShape: [Int], upShape: [Int]
        public let rank: Int
        public let alpha: Float
        /// alpha / rank (alpha / √rank for rank-stabilised LoRA).
        public let factor: Float
        public var isConvolution: Bool { downShape.count == 4 }
    }

    public let path: String
    public let format: Format
    public let layers: [Layer]
    let file: SafeTensorsFile

    public init(path: String) throws {
        file = try SafeTensorsFile(path: path)
        self.path = path
        let names = Set(file.names)
        func fail(_ message: String) -> ChiselError { ChiselError(.model, message, file: path) }
        if names.contains(where: { $0.contains("hada_w") || $0.contains("lokr_w") }) {
            throw fail("LyCORIS LoHa/LoKr layers are not supported; only LoRA (down/up) layers are")
        }
        if names.contains(where: { $0.hasSuffix("dora_scale") || $0.contains("lora_magnitude_vector") }) {
            throw fail("DoRA layers (magnitude vectors) are not supported; only plain LoRA layers are")
        }
        let kohya = names.filter { $0.hasSuffix(".lora_down.weight") }
        let peft = names.filter { name in Self.peftDownSuffixes.contains { name.hasSuffix($0.down) } }
        guard !kohya.isEmpty || !peft.isEmpty else {
            throw fail("not a LoRA file: no lora_down/lora_up (kohya) or lora_A/lora_B (diffusers, PEFT) tensors")
        }
        guard kohya.isEmpty || peft.isEmpty else {
            throw fail("mixes kohya (lora_down) and diffusers (lora_A) tensor names")
        }
        var used = Set<String>()
        var layers: [Layer] = []
        if !kohya.isEmpty {
            format = .kohya
            // Modules without an alpha take the most common alpha of the file, else their rank
            // (what diffusers' conversion makes of such files).
            var alphas: [String: Float] = [:]
            for down in kohya {
                let module = String(down.dropLast(".lora_down.weight".count))
                if names.contains(module + ".alpha") { alphas[module] = try Self.scalar(file, module + ".alpha") }
            }
            let common = Dictionary(grouping: alphas.values, by: { $0 }).max { a, b in
                a.value.count == b.value.count ? a.key > b.key : a.value.count < b.value.count
            }?.key
            for down in kohya.sorted() {
                let module = String(down.dropLast(".lora_down.weight".count))
                let component: Component
                let name: String
                if module.hasPrefix("lora_unet_") {
                    (component, name) = (.unet, String(module.dropFirst("lora_unet_".count)))
                } else if module.hasPrefix("lora_te_") || module.hasPrefix("lora_te1_") {
                    let prefix = module.hasPrefix("lora_te_") ? "lora_te_" : "lora_te1_"
                    (component, name) = (.textEncoder, String(module.dropFirst(prefix.count)))
                } else if module.hasPrefix("lora_te2_") {
                    (component, name) = (.textEncoder2, String(module.dropFirst("lora_te2_".count)))
                } else {
                    throw fail("layer '\(module)' is neither lora_unet_… nor lora_te_…")
                }
                let up = module + ".lora_up.weight"
                guard names.contains(up) else { throw fail("layer '\(module)' has lora_down but no lora_up") }
                let layer = try Self.layer(file, component: component, module: name, down: down, up: up,
                                           alpha: alphas[module] ?? common, rsLoRA: false)
                layers.append(layer)
                used.formUnion([down, up, module + ".alpha"])
            }
        } else {
            format = .peft
            let metadata = try Self.adapterMetadata(file)
            for down in peft.sorted() {
                let (module, up) = Self.peftModule(down)
                guard let first = module.split(separator: ".").first, let component = Component(rawValue: String(first)) else {
                    throw fail("layer '\(module)' is neither unet.…, text_encoder.… nor text_encoder_2.…")
                }
                let name = String(module.dropFirst(first.count + 1))
                guard names.contains(up) else { throw fail("layer '\(module)' has its down factor but no up factor (\(up))") }
                let config = metadata[component.rawValue]
                let layer = try Self.layer(file, component: component, module: name, down: down, up: up,
                                           alpha: config.map { $0.alpha(for: name) } ?? nil,
                                           rsLoRA: config?.rsLoRA ?? false)
                layers.append(layer)
                used.formUnion([down, up])
            }
        }
        let unused = names.subtracting(used).sorted()
        guard unused.isEmpty else {
            throw fail("tensors that belong to no LoRA layer: " + Self.list(unused))
        }
        self.layers = layers
    }

    /// Whether the file's tensor names are those of a LoRA (of any kind, supported or not).
    public static func isLoRA(path: String) -> Bool {
        guard path.hasSuffix(".safetensors"), let file = try? SafeTensorsFile(path: path) else { return false }
        return file.names.contains { name in
            name.hasSuffix(".lora_down.weight") || peftDownSuffixes.contains { name.hasSuffix($0.down) }
                || name.contains("hada_w") || name.contains("lokr_w")
        }
    }

    /// The model family the layers' widths point to: the cross-attention keys' input width
    /// (768 for SD 1.x, 1024 for SD 2.x) or the text encoder's.
    public var targetDescription: String {
        func width(_ component: Component, _ suffixes: [String]) -> Int? {
            layers(of: component).first { layer in suffixes.contains { layer.module.hasSuffix($0) } }?.downShape.last
        }
        let context = width(.unet, ["attn2.to_k", "attn2_to_k"]) ?? width(.textEncoder, ["q_proj"])
        switch context {
        case 768: return "Stable Diffusion 1.x (context width 768)"
        case 1024: return "Stable Diffusion 2.x (context width 1024)"
        case let other?: return "a model with context width \(other)"
        case nil: return "unknown (no cross-attention or text-encoder layer)"
        }
    }

    /// The layers of one network.
    public func layers(of component: Component) -> [Layer] { layers.filter { $0.component == component } }

    /// The ranks the file uses, smallest first.
    public var ranks: [Int] { Array(Set(layers.map(\.rank))).sorted() }

    func floats(_ name: String) throws -> [Float] { try file.floats(name) }

    /// Up to five names and how many more.
    static func list(_ names: [String]) -> String {
        names.prefix(5).joined(separator: ", ") + (names.count > 5 ? " and \(names.count - 5) more" : "")
    }

    private static func scalar(_ file: SafeTensorsFile, _ name: String) throws -> Float {
        let values = try file.floats(name)
        guard values.count == 1, let value = values.first, value.isFinite else {
            throw ChiselError(.model, "alpha must be one finite number, it has \(values.count) values", file: file.path,
                              tensor: name)
        }
        return value
    }

    private static func layer(_ file: SafeTensorsFile, component: Component, module: String, down: String, up: String,
                              alpha: Float?, rsLoRA: Bool) throws -> Layer {
        let downShape = try file.info(down).shape, upShape = try file.info(up).shape
        func fail(_ message: String) -> ChiselError { ChiselError(.model, message, file: file.path, tensor: down) }
        guard downShape.count == 2 || downShape.count == 4, upShape.count == downShape.count else {
            throw fail("down \(downShape) and up \(upShape) are not a pair of matrices or of convolution weights")
        }
        let rank = downShape[0]
        guard rank > 0, upShape[1] == rank else {
            throw fail("the up factor \(upShape) does not take the down factor's rank \(rank)")
        }
        if upShape.count == 4, upShape[2] != 1 || upShape[3] != 1 {
            throw fail("the up factor \(upShape) is not a 1×1 convolution")
        }
        let a = alpha ?? Float(rank)
        return Layer(component: component, module: module, down: down, up: up, downShape: downShape, upShape: upShape,
                     rank: rank, alpha: a, factor: rsLoRA ? a / Float(rank).squareRoot() : a / Float(rank))
    }

    /// The down/up factor suffixes of diffusers' spellings: PEFT's, then the older "diffusers"
    /// format's (`convert_state_dict_to_diffusers`), then the attention-processor one.
    static let peftDownSuffixes: [(down: String, up: String)] = [
        (".lora_A.weight", ".lora_B.weight"), (".lora_linear_layer.down.weight", ".lora_linear_layer.up.weight"),
        (".lora.down.weight", ".lora.up.weight"), ("_lora.down.weight", "_lora.up.weight"),
    ]

    /// The module and up-factor names of a diffusers/PEFT down factor.
    static func peftModule(_ down: String) -> (module: String, up: String) {
        for (suffix, upSuffix) in peftDownSuffixes.dropLast() where down.hasSuffix(suffix) {
            let module = String(down.dropLast(suffix.count))
            return (module, module + upSuffix)
        }
        // diffusers' attention-processor spelling: X.processor.to_q_lora.down.weight adapts X.to_q
        // (to_out_lora adapts X.to_out.0).
        let stem = String(down.dropLast("_lora.down.weight".count))
        let up = stem + "_lora.up.weight"
        var parts = stem.split(separator: ".").map(String.init)
        guard let last = parts.popLast() else { return (stem, up) }
        if parts.last == "processor" { parts.removeLast() }
        return ((parts + [last == "to_out" ? "to_out.0" : last]).joined(separator: "."), up)
    }

    /// Per network: the adapter's alpha (and per-module alphas) from diffusers' metadata.
    struct AdapterConfig {
        var alpha: Float?
        var alphaPattern: [String: Float] = [:]
        var rsLoRA = false

        func alpha(for module: String) -> Float? {
            // PEFT matches a pattern key against the end of the module's name.
            let match = alphaPattern.keys.filter { module == $0 || module.hasSuffix("." + $0) }.max { $0.count < $1.count }
            return match.flatMap { alphaPattern[$0] } ?? alpha
        }
    }

    private static func number(_ value: JSONValue) -> Float? {
        switch value {
        case .int(let n): Float(n)
        case .double(let x): Float(x)
        default: nil
        }
    }

    private static func adapterMetadata(_ file: SafeTensorsFile) throws -> [String: AdapterConfig] {
        guard let raw = file.metadata["lora_adapter_metadata"] else { return [:] }
        let json: JSONValue
        do { json = try JSONParser.parse(raw) } catch {
            throw ChiselError(.model, "its lora_adapter_metadata is not JSON", file: file.path, cause: "\(error)")
        }
        var configs: [String: AdapterConfig] = [:]
        for member in json.members ?? [] {
            let parts = member.key.split(separator: ".", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            var config = configs[parts[0]] ?? AdapterConfig()
            switch parts[1] {
            case "lora_alpha": config.alpha = Self.number(member.value)
            case "use_rslora": config.rsLoRA = member.value == .bool(true)
            case "alpha_pattern":
                for entry in member.value.members ?? [] {
                    if let value = Self.number(entry.value) { config.alphaPattern[entry.key] = value }
                }
            default: break
            }
            configs[parts[0]] = config
        }
        return configs
    }
}
