import ChiselCore
import ChiselStages
import Testing

@Suite struct FillMaskedStageTests {
    /// Left half red, right half blue; the mask covers a band across the middle.
    static func inputs() throws -> (Image, Mask) {
        let (w, h) = (32, 16)
        let red = (0..<(w * h)).map { Float($0 % w < w / 2 ? 1 : 0) }
        let blue = red.map { 1 - $0 }
        let image = try makeImage(w, h, .rgb, planes: [red, [Float](repeating: 0.25, count: w * h), blue])
        let mask = try makeMask(w, h) { _, y in y >= 6 && y < 10 ? 1 : 0 }
        return (image, mask)
    }

    @Test func unmaskedPixelsStayAndTheHoleTakesTheSurroundingColours() async throws {
        let (image, mask) = try Self.inputs()
        let outputs = try await runStage(FillMaskedStage.self, inputs: [FillMaskedStage.image(image), FillMaskedStage.mask(mask)])
        let out = try outputImage(outputs)
        for y in 0..<image.height {
            for x in 0..<image.width {
                if mask.value(x, y) == 0 {
                    for c in 0..<3 { #expect(out.sample(c, x, y) == image.sample(c, x, y), "(\(c), \(x), \(y))") }
                }
            }
        }
        // Inside the band: red on the left, blue on the right, the constant green kept.
        #expect(out.sample(0, 2, 8) > 0.9 && out.sample(2, 2, 8) < 0.1)
        #expect(out.sample(2, 29, 8) > 0.9 && out.sample(0, 29, 8) < 0.1)
        #expect(abs(out.sample(1, 16, 8) - 0.25) < 1e-5)
        #expect(out.sample(0, 16, 8) > 0.2 && out.sample(0, 16, 8) < 0.8, "the seam blends")
    }

    @Test func aMaskOfAnotherSizeIsResizedWithAWarning() async throws {
        let (image, _) = try Self.inputs()
        let small = try makeMask(8, 4) { _, y in y == 2 ? 1 : 0 }
        let events = EventLog()
        _ = try await runStage(FillMaskedStage.self, inputs: [FillMaskedStage.image(image), FillMaskedStage.mask(small)],
                               events: events)
        #expect(events.warnings == ["mask is 8×4; resized to the image's 32×16"])
    }
}
