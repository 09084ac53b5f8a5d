import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselModelStages
import ChiselTensor
import Foundation
import Testing

/// The Stable Diffusion loader, registered like the built-in stages, opens folders and single
/// files named in a graph's `models` section; its options are checked at validation.
@Suite struct StableDiffusionLoaderTests {
    static var fixtures: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ChiselModelsTests/Fixtures/reference").path
    }

    /// A stage that only takes a model, so a graph can name one.
    enum ModelProbe: Stage {
        static let model = ModelInput("model", "The model.")
        static let schema = StageSchema("probe", "Takes a model.", inputs: [model])
        static func run(_ call: StageCall) async throws -> StageOutputs { [] }
    }

    static func registry() throws -> StageRegistry {
        var registry = StageRegistry()
        try ModelStages.register(in: &registry)
        try registry.register(ModelProbe.self)
        return registry
    }

    static func plan(models: String) throws -> Plan {
        let json = try JSONParser.parse(#"{"chisel": 1, "models": \#(models), "nodes": {"p": {"stage": "probe", "inputs": {"model": "sd"}}}}"#,
                                        file: "g.json")
        return try GraphCompiler.compile(json, file: "g.json", directory: fixtures, registry: registry(),
                                         options: GraphOptions(workingDirectory: fixtures))
    }

    static func problems(models: String) -> [ChiselError] {
        do {
            _ = try plan(models: models)
            return []
        } catch let errors as ChiselErrors {
            return errors.errors
        } catch {
            return [ChiselError.wrapping(error)]
        }
    }

    @Test func registersTheStableDiffusionLoader() throws {
        let registry = try Self.registry()
        #expect(registry.modelLoader(kind: "stable_diffusion") != nil)
    }

    @Test(arguments: ["sd1-tiny", "sd2-tiny.safetensors"])
    func recognisesFoldersAndSingleFiles(name: String) throws {
        let loader = StableDiffusionLoader()
        #expect(loader.recognizes(path: "\(Self.fixtures)/\(name)"))
        #expect(!loader.recognizes(path: "\(Self.fixtures)/sd1-tiny/unet"))
        #expect(!loader.recognizes(path: "\(Self.fixtures)/missing"))
    }

    @Test func loadsAFolderOnceThroughTheModelStore() async throws {
        let plan = try Self.plan(models: #"{"sd": {"path": "sd2-tiny", "dtype": "bf16"}}"#)
        let store = ModelStore(specs: plan.models, registry: try Self.registry())
        let first = try await store.model(named: "sd")
        let second = try await store.model(named: "sd")
        #expect(first === second)
        let model = try #require(first as? StableDiffusionModel)
        #expect(model.kind == "stable_diffusion" && model.family == .sd2 && model.precision == .bf16)
        #expect(model.predictionType == .vPrediction)
        #expect(model.summary == "Stable Diffusion 2.x, v_prediction, bf16")
    }

    @Test func loadsASingleFileByKind() async throws {
        let hints = #"{"vae.norm_num_groups": 8, "unet.norm_num_groups": 8, "unet.attention_head_dim": 8, "text_encoder.num_attention_heads": 4}"#
        let plan = try Self.plan(models: #"{"sd": {"path": "sd1-tiny.safetensors", "kind": "stable_diffusion", "hints": \#(hints)}}"#)
        let model = try #require(try await ModelStore(specs: plan.models, registry: Self.registry()).model(named: "sd")
                                 as? StableDiffusionModel)
        #expect(model.family == .sd1 && model.precision == .f32 && model.tokenizer == nil)
    }

    @Test func badOptionsAreValidationErrorsNamingTheKey() {
        let found = Self.problems(models: #"{"sd": {"path": "sd1-tiny", "dtype": "fp8", "steps": 4}}"#)
        #expect(found.map(\.jsonPath) == ["models.sd.dtype", "models.sd.steps"])
        #expect(found.first?.message.contains("bf16") == true)
        #expect(found.last?.message.contains("unknown option 'steps'") == true)
        let misplaced = Self.problems(models: #"{"sd": {"path": "sd1-tiny", "hints": {"prediction_type": "sample"}}, "b": {"path": "sd1-tiny.safetensors", "variant": "fp16"}}"#)
        #expect(misplaced.map(\.jsonPath) == ["models.sd.hints", "models.b.variant"])
    }
}

/// The one conversion between the wire's N×C×H×W latent and the networks' channels-last tensor,
/// and the noise state a latent carries.
@Suite struct LatentWireTests {
    @Test func channelsLastRoundTrips() throws {
        let values = (0..<(2 * 3 * 4 * 5)).map(Float.init)
        let latent = try Latent(shape: [2, 3, 4, 5], values: values)
        let tensor = try latent.channelsLast()
        #expect(tensor.shape == [2, 4, 5, 3])
        // Element (n=1, c=2, y=3, x=4) sits at ((1·4 + 3)·5 + 4)·3 + 2 channels-last.
        let channelsLastIndex: Int = ((1 * 4 + 3) * 5 + 4) * 3 + 2
        let planarIndex: Int = ((1 * 3 + 2) * 4 + 3) * 5 + 4
        #expect(tensor.data[channelsLastIndex] == values[planarIndex])
        let back = try Latent(channelsLast: tensor)
        #expect(back == latent)
    }

    @Test func noiseStateTravelsAndTakesPartInEquality() throws {
        let state = NoiseState(scheduler: .euler, predictionType: .epsilon, steps: 20, stepIndex: 5, timestep: 749,
                               sigma: 2.5)
        let noised = try Latent(shape: [1, 4, 2, 2], values: [Float](repeating: 0, count: 16), noise: DiffusionState(schedule: state))
        #expect(noised.noiseState == state)
        var other = state
        other.stepIndex = 6
        #expect(noised != (try Latent(shape: [1, 4, 2, 2], values: [Float](repeating: 0, count: 16), noise: DiffusionState(schedule: other))))
        #expect(noised != (try Latent(shape: [1, 4, 2, 2], values: [Float](repeating: 0, count: 16))))
        // The seed is stored once, in the stream; the latent's summary names it with the schedule.
        #expect(DiffusionState(stream: NoiseStream(seed: 7), schedule: state).summary
                == "euler, step 5 of 20 (t 749.0, σ 2.5), cpu stream from seed 7")
    }
}
