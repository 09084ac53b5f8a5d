import ChiselBase
import Foundation

extension CLIPTokenizer {
    /// The name SwiftPM gives the ChiselModels target's resource bundle (`<package>_<target>`).
    static let resourceBundleName = "Chisel_ChiselModels.resources"

    /// The CLIP vocabulary that ships with Chisel, configured as SD 1.x's or SD 2.x's
    /// `tokenizer/` folder is: the same vocab.json and merges.txt (openai/clip-vit-large-patch14's),
    /// with that family's tokenizer_config.json and special_tokens_map.json. SD 1.x pads with
    /// `<|endoftext|>` (49407), SD 2.x with `!` (0), as its special_tokens_map.json says.
    /// Single-file checkpoints carry no tokenizer; this is the one to use for them.
    ///
    /// The files are in the resource bundle `Chisel_ChiselModels.resources`, a folder that
    /// SwiftPM builds next to the binaries (`.build/<triple>/<configuration>/`); a copied or
    /// installed `chisel` needs that folder beside it, or its path in `CHISEL_RESOURCES`.
    /// The bundle is found without SwiftPM's `Bundle.module`, which traps when it is missing.
    ///
    /// Each call reads the 1.4 MB of files and builds the merge table again; keep the tokenizer.
    public static func bundled(family: StableDiffusionModel.Family, behavior: Behavior = .fast) throws -> CLIPTokenizer {
        let folder = try bundledFolder()
        let configuration: String
        switch family {
        case .sd1, .sdxl: configuration = "sd1"
        case .sd2, .sdxlRefiner: configuration = "sd2"
        }
        return try CLIPTokenizer(
            vocabularyPath: TokenizerFile.path(folder, "vocab.json"), mergesPath: TokenizerFile.path(folder, "merges.txt"),
            configPath: TokenizerFile.path(folder, "\(configuration)/tokenizer_config.json"),
            specialTokensMapPath: TokenizerFile.path(folder, "\(configuration)/special_tokens_map.json"),
            behavior: behavior)
    }

    /// The `CLIP` folder of the resource bundle: `$CHISEL_RESOURCES` when set, else the bundle
    /// beside the running executable (which is also where `swift test` runs its test bundle from).
    static func bundledFolder() throws -> String {
        let candidates = ResourceBundles.candidates(resourceBundleName)
        for bundle in candidates {
            // SwiftPM copies `Resources` as a folder of that name into the bundle.
            for folder in [TokenizerFile.path(bundle, "Resources/CLIP"), TokenizerFile.path(bundle, "CLIP")]
            where TokenizerFile.exists(TokenizerFile.path(folder, "vocab.json")) {
                return folder
            }
        }
        throw ChiselError(
            .io, "the bundled CLIP vocabulary is missing: put \(resourceBundleName) beside the executable or set CHISEL_RESOURCES to it",
            file: candidates.first)
    }
}
