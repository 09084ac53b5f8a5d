import ChiselCore
@_exported import ChiselTestSupport
import Foundation
import Testing

@testable import ChiselImageIO

/// Access to the committed fixtures and the expectations written by tools/image_fixtures.
enum Fixtures {
    struct Manifest: Decodable {
        struct Entry: Decodable {
            var file: String
            var width: Int
            var height: Int
            var layout: String
            var bitDepth: Int
            var samples: [Int]
        }
        struct Texts: Decodable {
            var file: String
            var entries: [[String]]
        }
        var images: [Entry]
        var texts: Texts
    }

    static func url(_ name: String) throws -> URL {
        let folder = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return folder.appendingPathComponent(name)
    }

    static func path(_ name: String) throws -> String { try url(name).path }

    static func data(_ name: String) throws -> Data { try Data(contentsOf: url(name)) }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: data("png_expected.json"))
    }

    static func entry(_ file: String) throws -> Manifest.Entry {
        try #require(manifest().images.first { $0.file == file })
    }

    /// The PNG fixture names, for parameterised tests.
    static let pngNames: [String] = (try? manifest().images.map(\.file)) ?? []
}

/// The samples of `image`, interleaved and scaled to integers at `bitDepth`.
func integerSamples(_ image: Image, bitDepth: Int) -> [Int] {
    let maxValue = Float((1 << bitDepth) - 1)
    let n = image.planeSize, channels = image.channels
    var out = [Int](repeating: 0, count: n * channels)
    for c in 0..<channels {
        for i in 0..<n { out[i * channels + c] = Int((image.pixels[c * n + i] * maxValue).rounded()) }
    }
    return out
}

/// The pixel at (x, y) as 8-bit integers, one per channel.
func pixel8(_ image: Image, _ x: Int, _ y: Int) -> [Int] {
    (0..<image.channels).map { c in
        Int((image.pixels[(c * image.height + y) * image.width + x] * 255).rounded())
    }
}

/// Runs `body`, requiring that it throws a `ChiselError`, and returns that error.
@discardableResult
func expectChiselError(_ code: ChiselError.Code, sourceLocation: SourceLocation = #_sourceLocation,
                       _ body: () throws -> Void) -> ChiselError? {
    do {
        try body()
        Issue.record("expected a \(code.rawValue) error, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as ChiselError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a ChiselError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

