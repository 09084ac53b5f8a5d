import ChiselCore
import ChiselImageIO
import Foundation

/// Writes an image as PNG or JPEG, atomically, never over an input file.
public enum SaveImageStage: Stage {
    public enum Format: String, ParamChoice { case auto, png, jpeg }
    public enum Depth: String, ParamChoice {
        case auto
        case eight = "8"
        case sixteen = "16"
    }

    public static let image = Input<Image>("image", "The image to write.")
    public static let path = Param<String>.path(
        "path", role: .output, default: "{stem}-chisel.png",
        "Output file; may use {stem}, {index}, {index:04}, {node} and {NODE.stem}.")
    public static let format = Param<Format>("format", default: .auto,
                                             "File format; auto picks it from the extension (.png, .jpg, .jpeg).")
    public static let quality = Param<Int>("quality", default: 95, range: 1...100, "JPEG quality.")
    public static let bitDepth = Param<Depth>("bit_depth", default: .auto,
                                              "PNG sample depth; auto keeps the source's (16-bit in, 16-bit out).")
    public static let overwrite = Param<Bool>("overwrite", default: true,
                                              "Replace an existing output file (input files are never replaced).")
    public static let infotext = Param<String>(
        "infotext", default: "",
        "Settings added to the image's AUTOMATIC1111 infotext, as A1111 writes them (\"Mask blur: 4, Masked content: fill\"): what the graph did around the denoising that the parameters text should tell.")

    public static let schema = StageSchema(
        "save_image", "Write a PNG or JPEG (to a temporary name, then renamed; never over an input).",
        inputs: [image], params: [path, format, quality, bitDepth, overwrite, infotext])

    /// The format and extension must agree; an extension written with a template field is
    /// known only when the path is expanded, at run time.
    public static func validate(_ check: inout StageCheck) throws {
        let ext = (try check[path] as NSString).pathExtension
        guard !ext.contains("{") else { return }
        let choice = try check[format]
        do { _ = try resolveFormat(choice, pathExtension: ext) } catch let error as ChiselError {
            let culprit: any ParamKey = choice == .auto ? path : format
            check.reject(culprit, error.message)
        }
    }

    /// The expanded path, with its format checked, so `validate` finds `--output o` (no
    /// extension) before the model runs.
    public static func plannedOutputFiles(_ call: StageCall) throws -> [String] {
        let path = try outputPath(call, origin: nil)
        do { _ = try resolveFormat(call[format], pathExtension: (path as NSString).pathExtension) } catch let error as ChiselError {
            throw call.failure(error.message, code: error.code, file: path)
        }
        return [path]
    }

    static func outputPath(_ call: StageCall, origin: ImageOrigin?) throws -> String {
        let template = try PathTemplate(try call[path])
        return try template.expand(run: call.context.run, node: call.node, origin: origin)
    }

    public static func run(_ call: StageCall) async throws -> StageOutputs {
        let image = try call[Self.image]
        let path = try outputPath(call, origin: image.origin)
        let format: ImageFormat
        do { format = try resolveFormat(call[Self.format], pathExtension: (path as NSString).pathExtension) } catch let error as ChiselError {
            throw call.failure(error.message, code: error.code, file: path)
        }
        if call.context.files.isInput(path) {
            throw call.failure("refusing to write over input file \(path)", code: .io, file: path)
        }
        if let problem = OutputPolicy.unwritable(path) { throw call.failure(problem, code: .io, file: path) }
        let policy = call.context.run.outputPolicy
        if let policy, policy.confined, !policy.contains(path) {
            throw call.failure("output is outside the output folder \(policy.root)", code: .io, file: path)
        }
        let replace = try call[overwrite] && policy?.replaceExisting != false
        if !replace, FileManager.default.fileExists(atPath: path) {
            throw call.failure(try call[overwrite] ? "output exists, and \(policy?.origin ?? "this run") replaces no file; give --overwrite"
                                   : "output exists and overwrite is false", code: .io, file: path)
        }
        var options = ImageEncodeOptions(format: format)
        // AUTOMATIC1111's infotext: a PNG text chunk, or a JPEG's EXIF UserComment.
        if var generation = image.generation {
            generation.append(infotext: try call[infotext])
            // The program that wrote it, last, where A1111 puts its own version.
            if generation.value("Version") == nil { generation.settings.append(GenerationInfo.Setting("Version", "chisel " + ChiselVersion.text)) }
            options.text.append((key: "parameters", value: generation.parametersText))
        }
        if format == .png {
            // The graph that made the image (`chisel run --from`).
            if let provenance = call.context.provenance {
                options.text.append((key: Self.graphTextKey, value: provenance.resolvedGraph.serialized()))
                // The same graph in other tools' languages (ComfyUI's `prompt`), where they have one.
                options.text += provenance.exportedText
            }
        }
        options.jpegQuality = try call[quality]
        switch try call[bitDepth] {
        case .auto: options.bitDepth = nil
        case .eight: options.bitDepth = 8
        case .sixteen: options.bitDepth = 16
        }
        try ImageWriter.write(image, to: path, options: options, replace: replace)
        call.context.wrote(path)
        return []
    }

    /// The PNG text chunk holding the resolved graph an image was made by.
    public static let graphTextKey = "chisel-graph"

    /// The file format for the `format` choice and the path's extension.
    static func resolveFormat(_ choice: Format, pathExtension ext: String) throws -> ImageFormat {
        let fromExtension = ImageFormat(pathExtension: ext)
        switch choice {
        case .auto:
            guard let fromExtension else {
                throw ChiselError(.invalidParameter, ext.isEmpty
                    ? "the output path has no extension to tell the format by; end it with .png or .jpg, or set format"
                    : "cannot tell the format from extension '.\(ext)'; use .png, .jpg or set format")
            }
            return fromExtension
        case .png:
            if let fromExtension, fromExtension != .png {
                throw ChiselError(.invalidParameter, "format png does not match extension '.\(ext)'")
            }
            return .png
        case .jpeg:
            if let fromExtension, fromExtension != .jpeg {
                throw ChiselError(.invalidParameter, "format jpeg does not match extension '.\(ext)'")
            }
            return .jpeg
        }
    }
}
