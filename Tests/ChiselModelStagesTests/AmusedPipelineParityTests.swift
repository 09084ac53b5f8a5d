import ChiselCore
import ChiselDiffusion
import ChiselImageIO
import ChiselModels
import ChiselModelStages
import ChiselStages
import ChiselTensor
import Foundation
import Testing

/// The masked-token stages against diffusers' aMUSEd pipelines on two tiny random-weight models
/// (tools/reference/amused.py): the same seed gives the same tokens, the encoded and masked
/// grids on the way agree, and the decoded image is within 2/255.
@Suite(.serialized) struct AmusedPipelineParityTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/amused").path
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    struct Case: Decodable, CustomTestStringConvertible, Sendable {
        enum Temperature: Decodable, Sendable {
            case range(Double, Double), start(Double)
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let pair = try? container.decode([Double].self), pair.count == 2 {
                    self = .range(pair[0], pair[1])
                } else {
                    self = .start(try container.decode(Double.self))
                }
            }
            /// The stage's (temperature, temperature_end): a scalar t is the reference's linspace(t, 0.01).
            var bounds: (Double, Double) {
                switch self {
                case .range(let a, let b): (a, b)
                case .start(let a): (a, 0.01)
                }
            }
        }
        let name: String, model: String, kind: String
        let prompt: String
        let negative_prompt: String?
        let steps: Int, guidance: Double, seed: Int
        let temperature: Temperature
        let strength: Double?
        let height: Int, width: Int
        let image: String?, mask: String?
        let token_mask: [Int]?
        let mask_token_id: Int
        let file: String
        var testDescription: String { name }
    }

    static let cases: [Case] = {
        guard let data = FileManager.default.contents(atPath: fixtures + "/cases.json") else { return [] }
        return (try? JSONDecoder().decode([Case].self, from: data)) ?? []
    }()

    typealias Run = ModelStageRun<AmusedModel>

    static func expected(_ c: Case, _ key: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: "\(fixtures)/\(c.file)")
    }

    @Test func casesAreThere() {
        #expect(Self.cases.count == 16)
    }

    /// Runs a case through the stages as `chisel` graphs do, checking the intermediates against
    /// the reference in FP32. Returns the result, its image and the grid the prediction started from.
    static func tokens(_ c: Case, precision: Precision = .f32) async throws -> (Tokens, Image, Tokens) {
        let exact = precision == .f32
        let run = Run(try AmusedModel.load(path: repository + "/" + c.model, precision: precision))
        let file = try SafeTensorsFile(path: "\(fixtures)/\(c.file)")
        let text = try await EncodePromptStage.run(run.call(EncodePromptStage.self, [
            EncodePromptStage.prompt(c.prompt), EncodePromptStage.negativePrompt(c.negative_prompt ?? "")]))
        let conditioning = try #require(text[EncodePromptStage.conditioning])
        var grid: Tokens
        switch c.kind {
        case "txt2img":
            let empty = try await EmptyTokensStage.run(run.call(EmptyTokensStage.self, [
                EmptyTokensStage.width(c.width), EmptyTokensStage.height(c.height)]))
            grid = try #require(empty[EmptyTokensStage.tokens])
        default:
            let image = try ImageReader.read(path: fixtures + "/" + (c.image ?? "")).image.converted(to: .rgb)
            let encoded = try await VQEncodeStage.run(run.call(VQEncodeStage.self, [], [VQEncodeStage.image(image)]))
            grid = try #require(encoded[VQEncodeStage.tokens])
            if exact { #expect(grid.ids.map(Int.init) == (try file.integers("encoded_tokens")), "encoded tokens") }
            var params: [ParamSetting] = [MaskTokensStage.steps(c.steps), MaskTokensStage.strength(c.strength ?? 1)]
            var inputs: [InputSetting] = [MaskTokensStage.tokens(grid)]
            if c.kind == "inpaint" {
                let read = try await LoadMaskStage.run(StageCall(
                    LoadMaskStage.self, params: [LoadMaskStage.path(fixtures + "/" + (c.mask ?? ""))], inputs: [],
                    context: run.context))
                let loaded = try #require(read[LoadMaskStage.mask])
                params.append(MaskTokensStage.mode(.mask))
                inputs.append(MaskTokensStage.mask(loaded))
            } else {
                params += [MaskTokensStage.mode(.strength), MaskTokensStage.seed(.fixed(UInt64(c.seed)))]
            }
            let masked = try await MaskTokensStage.run(run.call(MaskTokensStage.self, params, inputs))
            grid = try #require(masked[MaskTokensStage.masked])
            if let tokenMask = c.token_mask { #expect(grid.masked == tokenMask.map { $0 != 0 }, "token mask") }
        }
        let initial = try file.integers("initial_tokens")
        if exact { #expect(grid.masked == initial.map { $0 == c.mask_token_id }, "initial masked tokens") }
        let (start, end) = c.temperature.bounds
        var params: [ParamSetting] = [PredictTokensStage.guidance(c.guidance), PredictTokensStage.temperature(start),
                                      PredictTokensStage.temperatureEnd(end)]
        if c.kind == "txt2img" { params.append(PredictTokensStage.steps(c.steps)) }
        if c.kind != "img2img" { params.append(PredictTokensStage.seed(.fixed(UInt64(c.seed)))) }
        let predicted = try await PredictTokensStage.run(run.call(PredictTokensStage.self, params, [
            PredictTokensStage.tokens(grid), PredictTokensStage.conditioning(conditioning)]))
        let result = try #require(predicted[PredictTokensStage.predicted])
        let decoded = try await VQDecodeStage.run(run.call(VQDecodeStage.self, [], [VQDecodeStage.tokens(result)]))
        return (result, try #require(decoded[VQDecodeStage.image]), grid)
    }

    @Test(arguments: cases)
    func stagesGiveTheReferenceTokens(c: Case) async throws {
        let (result, image, _) = try await Self.tokens(c)
        let file = try SafeTensorsFile(path: "\(Self.fixtures)/\(c.file)")
        let reference = try file.integers("tokens")
        let differing = zip(result.ids.map(Int.init), reference).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(reference.count) tokens differ")
        #expect(result.maskedCount == 0)
        // The decoded image (planar RGB) against the reference's NHWC floats.
        let expected = try file.floats("image")
        let n = image.width * image.height
        var worst: Float = 0
        for i in 0..<n { for ch in 0..<3 { worst = max(worst, abs(image.pixels[ch * n + i] - expected[i * 3 + ch])) } }
        #expect(worst <= 2.0 / 255, "decoded image max difference \(worst * 255)/255")
    }

    /// bf16 decoding takes the guided-before-the-last-projection order when guided, so it does not
    /// promise the reference's tokens; it must still keep every known token, predict every
    /// masked one and reproduce itself. (img2img at strength 1 is left out: like the reference,
    /// it starts from a grid with nothing masked, where the re-masking may take known tokens.)
    @Test(arguments: cases.filter { $0.guidance > 1 && !($0.kind == "img2img" && ($0.strength ?? 0) >= 1) })
    func bf16DecodingKeepsKnownTokensAndReproduces(c: Case) async throws {
        let (first, _, start) = try await Self.tokens(c, precision: .bf16)
        let (second, _, _) = try await Self.tokens(c, precision: .bf16)
        #expect(first.ids == second.ids)
        #expect(first.maskedCount == 0 && start.maskedCount > 0)
        let kept = (0..<start.count).filter { !start.masked[$0] }
        #expect(kept.allSatisfy { first.ids[$0] == start.ids[$0] }, "a known token changed")
        #expect(first.ids.allSatisfy { Int($0) < c.mask_token_id })
        // Close to the FP32 reference all the same: most tokens agree.
        let reference = try SafeTensorsFile(path: "\(Self.fixtures)/\(c.file)").integers("tokens")
        let agreeing = zip(first.ids.map(Int.init), reference).filter { $0 == $1 }.count
        #expect(agreeing * 4 >= reference.count * 3, "\(agreeing) of \(reference.count) tokens agree")
    }
}
