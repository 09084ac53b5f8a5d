@_exported import ChiselTestSupport
import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation
import Testing

func outputImage(_ outputs: [String: Value], _ port: String = "image",
           sourceLocation: SourceLocation = #_sourceLocation) throws -> Image {
    guard case .image(let image)? = outputs[port] else {
        Issue.record("no image on output '\(port)'", sourceLocation: sourceLocation)
        throw ChiselError(.internal, "no image on output '\(port)'")
    }
    return image
}

func outputMask(_ outputs: [String: Value], _ port: String = "mask",
          sourceLocation: SourceLocation = #_sourceLocation) throws -> Mask {
    guard case .mask(let mask)? = outputs[port] else {
        Issue.record("no mask on output '\(port)'", sourceLocation: sourceLocation)
        throw ChiselError(.internal, "no mask on output '\(port)'")
    }
    return mask
}

/// Runs `body`, expecting a `ChiselError` (with `code`, when given); returns it.
@discardableResult
func expectChiselError(_ code: ChiselError.Code? = nil, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () async throws -> Void) async -> ChiselError? {
    do {
        try await body()
        Issue.record("expected a ChiselError, but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as ChiselError {
        if let code {
            #expect(error.code == code, "error: \(error)", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a ChiselError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

// MARK: - Building images and masks

/// An image from one row-major array per channel.
func makeImage(_ width: Int, _ height: Int, _ layout: PixelLayout, planes: [[Float]], bitDepth: Int = 8,
               origin: ImageOrigin? = nil) throws -> Image {
    precondition(planes.count == layout.channels && planes.allSatisfy { $0.count == width * height })
    return try Image(width: width, height: height, layout: layout, pixels: planes.flatMap { $0 },
                     bitDepth: bitDepth, origin: origin)
}

func grayImage(_ width: Int, _ height: Int, _ values: [Float]) throws -> Image {
    try makeImage(width, height, .gray, planes: [values])
}

/// An image whose every sample is distinct: `value(c, x, y)`.
func patternImage(_ width: Int, _ height: Int, _ layout: PixelLayout,
                  _ value: (Int, Int, Int) -> Float = { c, x, y in Float(c * 10_000 + y * 100 + x) / 100_000 })
    throws -> Image {
    let planes = (0..<layout.channels).map { c in
        (0..<(width * height)).map { i in value(c, i % width, i / width) }
    }
    return try makeImage(width, height, layout, planes: planes)
}

func makeMask(_ width: Int, _ height: Int, _ value: (Int, Int) -> Float) throws -> Mask {
    try Mask(width: width, height: height, values: (0..<(width * height)).map { value($0 % width, $0 / width) })
}

extension Image {
    func sample(_ c: Int, _ x: Int, _ y: Int) -> Float { pixels[(c * height + y) * width + x] }
    func plane(_ c: Int) -> [Float] { Array(pixels[planeRange(c)]) }
}

extension Mask {
    func value(_ x: Int, _ y: Int) -> Float { values[y * width + x] }
}

/// Bit patterns, to compare floats exactly (and tell 0 from -0).
func bits(_ values: some Sequence<Float>) -> [UInt32] { values.map(\.bitPattern) }

/// The largest absolute difference between two equally long arrays.
func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
    precondition(a.count == b.count)
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

// MARK: - Files

/// A fresh folder under the system's temporary directory, removed by `remove()`.
struct TempFolder: ~Copyable {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("chisel-stages-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        // Canonical, so paths compare equal to what FileLedger and the stages produce.
        path = FileLedger.canonical(url.path)
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// The names in the folder, hidden ones included, sorted.
    func contents() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: path).sorted()
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func writePNG(_ image: Image, to path: String, bitDepth: Int? = nil) throws {
    try ImageWriter.write(image, to: path, options: ImageEncodeOptions(format: .png, bitDepth: bitDepth))
}

func fileBytes(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
}

/// Samples quantised to 8 bits, as a PNG stores them.
func quantised8(_ values: [Float]) -> [Float] { values.map { ($0 * 255).rounded() / 255 } }
