import ChiselCore
import ChiselDiffusion
import ChiselModels
import ChiselStages
import ChiselTensor
import Foundation
import Testing
@testable import ChiselModelStages

/// The model stages called directly, without a subprocess: the graphs the commands build, the
/// checks validation makes from a model's facts, the loop's channels-last layout.
@Suite struct ModelStageTests {
    static let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ChiselModelsTests/Fixtures/reference").standardized.path
    static let amused = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../ChiselModelsTests/Fixtures/amused/tiny").standardized.path

    static func registry() throws -> StageRegistry {
        var registry = StageRegistry()
        try BuiltinStages.register(in: &registry)
        try InpaintingStages.register(in: &registry)
        try ModelStages.register(in: &registry)
        return registry
    }

    /// Compiles a graph without needing its input files, as `chisel validate` does.
    static func compile(_ graph: JSONValue) throws -> Plan {
        try GraphCompiler.compile(graph, file: nil, directory: "/", registry: registry(),
                                  options: GraphOptions(workingDirectory: "/", checkInputFiles: false))
    }

    static func stage(_ plan: Plan, _ node: String) -> String? {
        plan.index(of: node).map { plan.nodes[$0].schema.name }
    }

    @Test(arguments: ["sd1-tiny", "sd1-inpaint-tiny"])
    func editGraphsCompileAndWireInpaintingByTheUNetsChannels(model: String) throws {
        let path = Self.reference + "/" + model
        let facts = try StableDiffusionFacts(path: path)
        var request = EditRequest(model: path, image: "/in.png", output: "/out/result.png")
        request.prompt = "a boat"
        request.seed = .fixed(3)
        if facts.isInpainting {
            // img2img needs the mask and masked image a 9-channel UNet takes: validation says so.
            #expect(throws: ChiselErrors.self) { try Self.compile(EditGraphs.img2img(request, facts: facts)) }
        } else {
            let img2img = try Self.compile(EditGraphs.img2img(request, facts: facts, rounds: 2))
            #expect(Self.stage(img2img, "edited_2") == DenoiseStage.schema.name)
        }
        let inpaint = try Self.compile(EditGraphs.inpaint(request, InpaintRequest(mask: "/mask.png"), facts: facts))
        let denoise = try #require(inpaint.index(of: "edited").map { inpaint.nodes[$0] })
        #expect((denoise.inputs[DenoiseStage.maskedImage.name] != nil) == facts.isInpainting)
        #expect((denoise.inputs[DenoiseStage.original.name] != nil) == !facts.isInpainting)
        // A 9-channel UNet at strength 1 starts from an empty latent (diffusers draws no image sample).
        #expect(Self.stage(inpaint, "latent") == (facts.isInpainting ? EmptyLatentStage.schema.name : VAEEncodeStage.schema.name))
    }

    @Test func amusedEditGraphsCompile() throws {
        let facts = try AmusedFacts(folder: Self.amused)
        let request = EditRequest(model: Self.amused, image: "/in.png", output: "/out/result.png")
        var inpaint = InpaintRequest(mask: "/mask.png")
        _ = try Self.compile(EditGraphs.amused(request, inpaint: nil, facts: facts))
        _ = try Self.compile(EditGraphs.amused(request, inpaint: inpaint, facts: facts))
        inpaint.tokenMode = .refine
        let refine = try Self.compile(EditGraphs.amused(request, inpaint: inpaint, facts: facts))
        #expect(Self.stage(refine, "predicted") == RefineTokensStage.schema.name)
        _ = try Self.compile(EditGraphs.refine(RefineRequest(model: Self.amused, dtype: "fp32", image: "/in.png",
                                                             output: "/out/r.png"), facts: facts))
    }

    /// Options left unset leave the stages' defaults: the graph says what the stage would use.
    @Test func unsetOptionsTakeTheStagesDefaults() throws {
        let path = Self.reference + "/sd1-tiny"
        let plan = try Self.compile(EditGraphs.img2img(EditRequest(model: path, image: "/in.png", output: "/o.png"),
                                                       facts: StableDiffusionFacts(path: path)))
        let denoise = try #require(plan.index(of: "edited").map { plan.nodes[$0] })
        #expect(denoise.params[DenoiseStage.guidance.name] == DenoiseStage.guidance.spec.defaultValue)
        #expect(denoise.params[DenoiseStage.eta.name] == DenoiseStage.eta.spec.defaultValue)
        let noised = try #require(plan.index(of: "noised").map { plan.nodes[$0] })
        #expect(noised.params[AddNoiseStage.steps.name] == .int(EditGraphs.diffusersSteps))
        #expect(noised.params[AddNoiseStage.strength.name] == .float(EditGraphs.diffusersImg2ImgStrength))
    }

    static func check(_ stage: any Stage.Type, model: String, options: [String: JSONValue] = [:], params: [String: ParamValue] = [:],
                      connected: [String] = []) throws -> StageCheck {
        var sources: [String: StageCheck.Source] = [DenoiseStage.model.name: .model(ModelSpec(name: "m", path: model, options: options))]
        for input in connected { sources[input] = .node("x", stage: "x", port: "x") }
        var values: [String: ParamValue] = [:]
        for spec in stage.schema.params { values[spec.name] = spec.defaultValue }
        for (name, value) in params { values[name] = value }
        var check = StageCheck(node: "n", params: values, sources: sources)
        try stage.validate(&check)
        return check
    }

    @Test func denoiseValidatesTheInpaintingInputsAgainstTheUNet() throws {
        let nine = Self.reference + "/sd1-inpaint-tiny", four = Self.reference + "/sd1-tiny"
        let missing = try Self.check(DenoiseStage.self, model: nine)
        #expect(missing.problems.map(\.input) == [DenoiseStage.maskedImage.name])
        let soft = try Self.check(DenoiseStage.self, model: nine, params: [DenoiseStage.softMask.name: .bool(true)],
                                  connected: [DenoiseStage.mask.name, DenoiseStage.maskedImage.name, DenoiseStage.original.name])
        #expect(soft.problems.isEmpty)
        #expect(soft.warnings.map(\.param) == [DenoiseStage.softMask.name, nil])
        #expect(soft.warnings.map(\.input) == [nil, DenoiseStage.original.name])
        let wrong = try Self.check(DenoiseStage.self, model: four, connected: [DenoiseStage.mask.name, DenoiseStage.maskedImage.name])
        #expect(wrong.problems.contains { $0.input == DenoiseStage.maskedImage.name && $0.code == .model })
        let amused = try Self.check(DenoiseStage.self, model: Self.amused)
        #expect(amused.problems.contains { $0.input == DenoiseStage.model.name && $0.message.contains("aMUSEd") })
    }

    @Test func encodePromptRefusesChunksAndClipSkipForAMUSEdOnly() throws {
        let params: [String: ParamValue] = [EncodePromptStage.mode.name: .string("chunk"), EncodePromptStage.clipSkip.name: .int(1)]
        let amused = try Self.check(EncodePromptStage.self, model: Self.amused, params: params)
        #expect(Set(amused.problems.compactMap(\.param)) == [EncodePromptStage.mode.name, EncodePromptStage.clipSkip.name])
        #expect(try Self.check(EncodePromptStage.self, model: Self.reference + "/sd1-tiny", params: params).problems.isEmpty)
    }

    /// scheduler auto runs the checkpoint's scheduler class: one Chisel does not implement is a
    /// validation error, and the model entry's scheduler_config is taken into account.
    @Test func autoSchedulerIsCheckedAgainstTheCheckpointsScheduler() throws {
        let path = Self.reference + "/sd1-tiny"
        #expect(try Self.check(AddNoiseStage.self, model: path).problems.isEmpty)
        let foreign: [String: JSONValue] = ["scheduler_config": .object([JSONMember(key: "_class_name", value: "KDPM2DiscreteScheduler")])]
        let refused = try Self.check(AddNoiseStage.self, model: path, options: foreign)
        #expect(refused.problems.map(\.param) == [AddNoiseStage.scheduler.name], "\(refused.problems)")
        let named = try Self.check(AddNoiseStage.self, model: path, options: foreign,
                                   params: [AddNoiseStage.scheduler.name: .string("euler")])
        #expect(named.problems.isEmpty, "a named scheduler does not depend on the checkpoint's")
    }

    /// How many of a 10-step schedule each strength mode runs at strength 0.5: diffusers 5,
    /// AUTOMATIC1111 int(10 × 0.5) + 1 = 6, ComfyUI exactly 10 (of a 20-step schedule).
    @Test(arguments: [(AddNoiseStage.StrengthMode.cut, 5, 10), (.a1111, 6, 10), (.exact, 10, 20)])
    func strengthModesRunTheStepsEachToolRuns(mode: AddNoiseStage.StrengthMode, run: Int, schedule: Int) async throws {
        let model = try StableDiffusionModel.load(path: Self.reference + "/sd1-tiny")
        let stage = ModelStageRun(model)
        let latent = try Latent(shape: [1, 4, 4, 4], values: [Float](repeating: 0.1, count: 64))
        let out = try await AddNoiseStage.run(stage.call(AddNoiseStage.self, [
            AddNoiseStage.scheduler("euler"), AddNoiseStage.steps(10), AddNoiseStage.strength(0.5), AddNoiseStage.strengthMode(mode),
            AddNoiseStage.seed(.fixed(1))], [AddNoiseStage.latent(latent)]))
        let state = try #require(out[AddNoiseStage.noised]?.noiseState)
        #expect(state.steps == schedule && state.steps - state.stepIndex == run, "\(state.summary)")
    }

    @Test func emptyLatentHasTheModelsChannelsAtItsDownscale() async throws {
        let model = try StableDiffusionModel.load(path: Self.reference + "/sd1-tiny")
        let run = ModelStageRun(model)
        let out = try await EmptyLatentStage.run(run.call(EmptyLatentStage.self, [EmptyLatentStage.width(16), EmptyLatentStage.height(12)]))
        let latent = try #require(out[EmptyLatentStage.latent])
        let factor = model.vae.downscale
        #expect(latent.shape == [1, model.unet.config.outChannels, 12 / factor, 16 / factor])
        #expect(latent.values.allSatisfy { $0 == 0 })
    }

    /// The denoising loop keeps latents channels-last: the layout round-trips, and draws moved
    /// channels-last put each of the stream's numbers at the element diffusers gives it.
    @Test func channelsLastDrawsGiveEachElementItsNumber() throws {
        let latent = try Latent(shape: [1, 3, 2, 4], values: (0..<24).map(Float.init))
        let layout = LatentLayout(latent)
        let last = layout.channelsLast(latent.values)
        #expect(last == (try latent.channelsLast().data))
        #expect(layout.channelsFirst(last) == latent.values)
        var plain = NoiseStream(seed: 9, kind: .cpu)
        var moved = ChannelsLastDraws(source: NoiseStream(seed: 9, kind: .cpu), layout: layout)
        #expect(moved.normal(count: 24) == layout.channelsLast(plain.normal(count: 24)))
        #expect(moved.source.normal(count: 5) == plain.normal(count: 5), "the stream advances as it would undisturbed")
    }

    @Test func stepOptionsReachDDIM() throws {
        let scheduler = try SchedulerKind(named: "ddim").makeScheduler(config: SchedulerConfig(), options: StepOptions(eta: 0.5))
        #expect((scheduler as? DDIMScheduler)?.eta == 0.5)
        let euler = try SchedulerKind(named: "euler").makeScheduler(config: SchedulerConfig(), options: StepOptions(eta: 0.5))
        #expect(euler.schedulerClass == .euler)
    }
}
