import ChiselCore
import ChiselModels
import Foundation
import Testing

/// Textual-inversion files in every format (tools/reference/embedding.py), the pickled ones read
/// by `TorchArchive` without running them.
@Suite struct TextualInversionTests {
    static var root: String { (Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.path ?? "Fixtures") + "/embeddings" }

    @Test func pickledEmbeddingsGiveTheirValues() throws {
        let values = try SafeTensorsFile(path: Self.root + "/pickled-values.safetensors")
        let pt = try TextualInversion(path: Self.root + "/pt-style.pt")
        #expect(pt.token == "pt-style" && pt.tokens == ["pt-style", "pt-style_1", "pt-style_2"])
        #expect(pt.vectors.flatMap { $0 } == (try values.floats("pt-style")))
        let bin = try TextualInversion(path: Self.root + "/learned_embeds.bin")
        #expect(bin.token == "<bin-style>" && bin.vectors.count == 1)
        #expect(bin.vectors.flatMap { $0 } == (try values.floats("bin-style")))
    }

    @Test func safetensorsEmbeddingsNameTheirTokens() throws {
        let diffusers = try TextualInversion(path: Self.root + "/learned_embeds.safetensors")
        #expect(diffusers.token == "<fox-style>" && diffusers.vectors.count == 2)
        let a1111 = try TextualInversion(path: Self.root + "/tiny-style.safetensors")
        #expect(a1111.token == "tiny-style" && a1111.vectors.count == 1)
        #expect(try TextualInversion(path: Self.root + "/tiny-style.safetensors", token: "<mine>").token == "<mine>")
    }

    @Test func aHostilePickleIsRefusedWithoutRunning() throws {
        do {
            _ = try TextualInversion(path: Self.root + "/hostile.pt")
            Issue.record("a pickle calling os.system was read")
        } catch let error as ChiselError {
            #expect(error.description.contains("system") && error.description.contains("not read"), "\(error)")
            #expect(error.description.contains("hostile.pt"), "\(error)")
        }
    }
}
