import ChiselBase
import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation
import Testing

/// The canny stage against OpenCV's cv2.Canny (tools/reference/canny.py) on crops of three real
/// photographs, colour and grey, with several thresholds (swapped ones too) and both gradient
/// norms: the same edge pixels, every one.
struct CannyStageTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/canny").path

    struct Case: CustomTestStringConvertible, Sendable {
        var name: String, image: String, edges: String, low: Double, high: Double, l2: Bool
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        guard let data = FileManager.default.contents(atPath: fixtures + "/cases.json"),
              let json = try? JSONParser.parse(String(decoding: data, as: UTF8.self)), case .array(let entries)? = json["cases"] else {
            return []
        }
        return entries.compactMap { e in
            guard let name = e["name"]?.stringValue, let image = e["image"]?.stringValue, let edges = e["edges"]?.stringValue,
                  let low = e["low"]?.doubleValue, let high = e["high"]?.doubleValue else { return nil }
            return Case(name: name, image: image, edges: edges, low: low, high: high, l2: e["l2_gradient"] == .bool(true))
        }
    }()

    @Test func theFixturesAreThere() {
        #expect(Self.cases.count == 30)
    }

    @Test(arguments: cases)
    func matchesOpenCV(c: Case) async throws {
        let photo = try ImageReader.read(path: Self.fixtures + "/" + c.image).image
        let out = try await CannyStage.run(makeCall(CannyStage.self, params: [
            CannyStage.low(c.low), CannyStage.high(c.high), CannyStage.l2Gradient(c.l2)], inputs: [CannyStage.image(photo)]))
        let edges = try #require(out[CannyStage.edges])
        let expected = try ImageReader.read(path: Self.fixtures + "/" + c.edges).image
        #expect(edges.width == expected.width && edges.height == expected.height)
        let n = expected.width * expected.height
        var wrong = 0, found = 0
        for i in 0..<n {
            let mine = edges.pixels[i] > 0.5
            if mine { found += 1 }
            if mine != (expected.pixels[i] > 0.5) { wrong += 1 }
        }
        #expect(found > n / 50, "\(found) edge pixels of \(n)")
        #expect(wrong == 0, "\(wrong) of \(n) pixels differ from cv2.Canny (\(found) edge pixels)")
    }

    /// The edge map is RGB white on black at the image's size, whatever the input's layout.
    @Test func edgesAreWhiteOnBlackRGB() async throws {
        var pixels = [Float](repeating: 0, count: 16 * 12 * 4)
        for y in 0..<12 { for x in 8..<16 { for c in 0..<3 { pixels[c * 192 + y * 16 + x] = 1 } } }
        for i in 0..<192 { pixels[3 * 192 + i] = 1 }
        let image = try Image(width: 16, height: 12, layout: .rgba, pixels: pixels)
        let out = try await CannyStage.run(makeCall(CannyStage.self, inputs: [CannyStage.image(image)]))
        let edges = try #require(out[CannyStage.edges])
        #expect(edges.layout == .rgb && edges.width == 16 && edges.height == 12)
        var rowsWithEdge = 0
        for y in 0..<12 where edges.pixels[y * 16 + 7] > 0.5 || edges.pixels[y * 16 + 8] > 0.5 { rowsWithEdge += 1 }
        #expect(rowsWithEdge == 12, "the vertical step is an edge in every row")
        #expect(edges.pixels[0] == 0 && edges.pixels[15] == 0)
    }
}
