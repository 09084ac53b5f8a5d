import ChiselCore
import ChiselModels
import Foundation

/// The models Chisel trains itself on its procedural scene world (tools/train/) and ships: named `builtin:scenes`
/// (Stable Diffusion architecture) and `builtin:scenes-mvtm` (aMUSEd architecture) in graphs,
/// and used by `chisel img2img`, `chisel inpaint` and `chisel refine` when no `--model` is given.
///
/// Their folders are in the diffusers layouts the loaders read. They are looked for in
/// `$CHISEL_MODELS` (a folder holding `scenes-sd/` and `scenes-mvtm/`) when set, then in the
/// resource bundle `Chisel_ChiselBundledModels.resources` (see `ResourceBundles`).
public struct BundledModel: BuiltinModel {
    public let name: String
    /// The folder's name in the bundle (and in the repository's models/).
    public let folderName: String
    public let summary: String

    public static let bundleName = "Chisel_ChiselBundledModels.resources"
    /// The folder in the bundle (the repository's models/scenes/) that holds the model folders.
    public static let bundleFolder = "scenes"

    /// The Stable-Diffusion-architecture scene model.
    public static let scenes = BundledModel(
        name: "scenes", folderName: "scenes-sd",
        summary: "Stable Diffusion architecture trained by Chisel on its scene world (128×128)")
    /// The aMUSEd-architecture scene model.
    public static let scenesMVTM = BundledModel(
        name: "scenes-mvtm", folderName: "scenes-mvtm",
        summary: "aMUSEd (masked-token) architecture trained by Chisel on its scene world (128×128)")

    public static let all = [scenes, scenesMVTM]

    /// `builtin:NAME`, as a graph or `--model` names it.
    public var location: String { BuiltinModelLocation.scheme + name }

    public func folder() throws -> String {
        var places: [String] = []
        if let override = ProcessInfo.processInfo.environment["CHISEL_MODELS"], !override.isEmpty {
            places.append(URL(fileURLWithPath: override).appendingPathComponent(folderName).path)
        }
        places += ResourceBundles.candidates(Self.bundleName).map {
            URL(fileURLWithPath: $0).appendingPathComponent(Self.bundleFolder).appendingPathComponent(folderName).path
        }
        for place in places where FileManager.default.fileExists(atPath: place + "/model_index.json") {
            return place
        }
        throw ChiselError(.model, "the built-in model '\(location)' (\(folderName)) is not in this build or installation: "
                          + "build Chisel from a checkout with models/\(Self.bundleFolder)/\(folderName), keep \(Self.bundleName) beside "
                          + "the chisel executable, or set CHISEL_MODELS to a folder holding \(folderName); "
                          + "or name a model with --model", file: places.first)
    }
}
