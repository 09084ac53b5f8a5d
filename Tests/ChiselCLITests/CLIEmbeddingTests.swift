import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img --embedding` against diffusers' `load_textual_inversion` (tools/reference/
/// embedding.py): a two-vector embedding in diffusers' format and a one-vector one in
/// AUTOMATIC1111's, used by their tokens in the prompt and the negative prompt.
@Suite struct CLIEmbeddingTests {
    static let files = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/embeddings").path
    static let cases = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/embeddings").path
    static let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
    static let image = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path

    struct Case: Decodable {
        var prompt: String, negativePrompt: String, promptIDs: [Int], meanEffect: Double
        enum CodingKeys: String, CodingKey {
            case prompt, negativePrompt = "negative_prompt", promptIDs = "prompt_ids", meanEffect = "mean_effect_of_the_embeddings"
        }
    }

    static func record() throws -> Case {
        let data = try #require(FileManager.default.contents(atPath: cases + "/cases.json"))
        return try JSONDecoder().decode(Case.self, from: data)
    }

    func edit(_ c: Case, embeddings: [String], to out: String) throws -> CLIResult {
        try CLI.run(["img2img", "--model", Self.model, "--image", Self.image, "--prompt", c.prompt,
                     "--negative-prompt", c.negativePrompt, "--strength", "0.6", "--steps", "10", "--guidance", "7.5",
                     "--seed", "13", "--output", out] + embeddings.flatMap { ["--embedding", "\(Self.files)/\($0)"] })
    }

    @Test func tokensAndVectorsAreDiffusers() throws {
        let c = try Self.record()
        let model = try StableDiffusionModel.load(
            path: Self.model, embeddings: [try TextualInversion(path: Self.files + "/learned_embeds.safetensors"),
                                           try TextualInversion(path: Self.files + "/tiny-style.safetensors")])
        let tokenizer = try #require(model.tokenizer)
        let expanded = TextualInversion.expanding(c.prompt, embeddings: model.embeddings, tokenizer: tokenizer)
        #expect(tokenizer(expanded, padding: .doNotPad) == c.promptIDs, "\(expanded)")
        #expect(model.textEncoder.config.vocabSize == 1003)
    }

    @Test func img2imgWithEmbeddingsGivesDiffusersImage() throws {
        let c = try Self.record()
        let temp = try TemporaryFolder()
        let out = temp.path("out.png"), plain = temp.path("plain.png")
        let result = try edit(c, embeddings: ["learned_embeds.safetensors", "tiny-style.safetensors"], to: out)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try SafeTensorsFile(path: "\(Self.cases)/img2img_sd1_embeddings.safetensors").floats("image")
        let (worst, mean) = try CLILoRATests.difference(out, expected)
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
        #expect(try edit(c, embeddings: [], to: plain).status == 0)
        let (_, away) = try CLILoRATests.difference(plain, expected)
        #expect(Double(away) > 0.5 * c.meanEffect && away > 10 * mean, "without the embeddings: \(away * 255)/255")
    }

    @Test func wrongEmbeddingsAreClearErrors() throws {
        let c = try Self.record()
        let temp = try TemporaryFolder()
        // The same token twice.
        let twice = try edit(c, embeddings: ["tiny-style.safetensors", "tiny-style.safetensors"], to: temp.path("a.png"))
        #expect(twice.status != 0 && twice.stderr.contains("already has a token 'tiny-style'"), "\(twice.stderr)")
        // A file of another kind.
        let lora = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/lora/kohya-sd1.safetensors").path
        let notEmbedding = try CLI.run(["img2img", "--model", Self.model, "--image", Self.image, "--embedding", lora,
                                        "--output", temp.path("b.png")])
        #expect(notEmbedding.status != 0 && notEmbedding.stderr.contains("not a textual-inversion embedding")
                && notEmbedding.stderr.contains("kohya-sd1.safetensors"), "\(notEmbedding.stderr)")
    }
}
