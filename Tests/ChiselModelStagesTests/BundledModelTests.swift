import ChiselCore
@testable import ChiselModelStages
import Testing

@Suite struct BundledModelTests {
    @Test func aMissingBundledModelNamesWhatIsMissing() {
        let missing = BundledModel(name: "nowhere", folderName: "not-in-any-bundle", summary: "test")
        #expect {
            _ = try missing.folder()
        } throws: { error in
            let message = (error as? ChiselError)?.message ?? ""
            return message.contains("builtin:nowhere") && message.contains("CHISEL_MODELS") && message.contains("--model")
        }
    }

    @Test func theRegistryKnowsTheSceneModels() throws {
        var registry = StageRegistry()
        try ModelStages.register(in: &registry)
        #expect(registry.builtinModels.map(\.name) == ["scenes", "scenes-mvtm"])
        #expect(try registry.builtinModelFolder(for: "/some/folder") == nil)
        #expect(throws: ChiselError.self) { try registry.builtinModelFolder(for: "builtin:nonesuch") }
    }
}
