import ChiselCore
import ChiselImageIO
import Foundation

/// Writes an image as PNG or JPEG, atomically, never over an input file.
public enum SaveImageStage: Stage {
    public enum Format: String, CaseIterable { case auto, png, jpeg }
    public enum Depth: String, CaseIterable {
        case auto
        case eight = "8"
        case sixteen = "16"
    }

    public static let schema = StageSchema(
        "save_image", "Write a PNG or JPEG (to a temporary name, then renamed; never over an input).",
        inputs: [.image("image", "The image to write.")],
        params: [
            .path("path", role: .output, default: "{stem}-chisel.png",
                  "Output file; may use {stem}, {index}, {index:04}, {node} and {NODE.stem}."),
            .choice("format", Format.allCases.map(\.rawValue), default: "auto",
                    "File format; auto picks it from the extension (.png, .jpg, .jpeg)."),
            .int("quality", default: 95, range: 1...100, "JPEG quality."),
            .choice("bit_depth", Depth.allCases.map(\.rawValue), default: "auto",
                    "PNG sample depth; auto keeps the source's (16-bit in, 16-bit out)."),
            .bool("overwrite", default: true, "Replace an existing output file (input files are never replaced)."),
        ])

    public static func plannedOutputFiles(_ call: StageCall) throws -> [String] {
        [try outputPath(call, origin: nil)]
    }

    static func outputPath(_ call: StageCall, origin: ImageOrigin?) throws -> String {
        let template = try PathTemplate(try call.string("path"))
        return try template.expand(run: call.context.run, node: call.node, origin: origin)
    }

    public static func run(_ call: StageCall) async throws -> [String: Value] {
        let image = try call.image("image")
        let path = try outputPath(call, origin: image.origin)
        let format = try resolveFormat(call, path: path)
        if call.context.files.isInput(path) {
            throw call.failure("refusing to write over input file \(path)", code: .io, file: path)
        }
        if !(try call.bool("overwrite")), FileManager.default.fileExists(atPath: path) {
            throw call.failure("output exists and overwrite is false", code: .io, file: path)
        }
        var options = ImageEncodeOptions(format: format)
        options.jpegQuality = try call.int("quality")
        switch try call.choice("bit_depth", as: Depth.self) {
        case .auto: options.bitDepth = nil
        case .eight: options.bitDepth = 8
        case .sixteen: options.bitDepth = 16
        }
        try ImageWriter.write(image, to: path, options: options)
        call.context.wrote(path)
        return [:]
    }

    private static func resolveFormat(_ call: StageCall, path: String) throws -> ImageFormat {
        let ext = (path as NSString).pathExtension
        let fromExtension = ImageFormat(pathExtension: ext)
        switch try call.choice("format", as: Format.self) {
        case .auto:
            guard let fromExtension else {
                throw call.failure("cannot tell the format from extension '.\(ext)'; use .png, .jpg or set format",
                                   code: .invalidParameter, file: path)
            }
            return fromExtension
        case .png:
            if let fromExtension, fromExtension != .png {
                throw call.failure("format png does not match extension '.\(ext)'", code: .invalidParameter, file: path)
            }
            return .png
        case .jpeg:
            if let fromExtension, fromExtension != .jpeg {
                throw call.failure("format jpeg does not match extension '.\(ext)'", code: .invalidParameter, file: path)
            }
            return .jpeg
        }
    }
}
