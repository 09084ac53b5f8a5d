import ChiselCore
import Testing
@testable import Vignette

/// The stage run outside a graph with its keys: the schema's defaults, then the settings given
/// (docs/custom-stages.md, step 4).
@Test func cornersDarkenCentreStays() async throws {
    let image = try Image(width: 5, height: 5, layout: .gray, filledWith: 1)
    let context = StageContext(node: "v", run: RunInfo(), files: FileLedger(), events: { _ in })
    let call = StageCall(VignetteStage.self, params: [VignetteStage.strength(0.5)],
                         inputs: [VignetteStage.image(image)], context: context)
    let out = try #require(try await VignetteStage.run(call)[VignetteStage.darkened])
    #expect(out.pixels[12] == 1)               // centre
    #expect(abs(out.pixels[0] - 0.5) < 1e-6)   // corner
}
