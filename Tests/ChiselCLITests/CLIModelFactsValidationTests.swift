import ChiselCore
import Foundation
import Testing

/// Checks the parameters and the model's facts decide are made by `chisel validate`, before
/// anything loads, each reported with its node and JSON path (ModelFacts: one place per family).
@Suite struct CLIModelFactsValidationTests {
    static let fixtures = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures").path
    static let sd4 = fixtures + "/reference/sd1-tiny"
    static let sd9 = fixtures + "/reference/sd1-inpaint-tiny"
    static let amused = fixtures + "/amused/tiny"
    static let taesd = fixtures + "/taesd/tiny"
    static let image = CLI.repository.appendingPathComponent("samples/images/lake.png").path

    /// A graph with one model, `model` (with `options`), and `nodes` after a loaded image `photo`.
    static func graph(model: String, options: String = "", _ nodes: String, in temp: TemporaryFolder) throws -> String {
        try temp.write("""
            {"chisel": 1, "models": {"m": {"path": "\(model)"\(options)}}, "nodes": {
              "photo": {"stage": "load_image", "params": {"path": "\(image)", "mode": "rgb"}},
              \(nodes)
            }}
            """, to: "graph.json")
    }

    static func errors(_ graph: String) throws -> [String] {
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 1, "\(result.stdout)")
        return result.errorLines
    }

    @Test(arguments: [
        (#""mode": "chunk""#, "params.mode", "mode truncate"),
        (#""clip_skip": 1"#, "params.clip_skip", "clip_skip 0"),
    ])
    func aMUSEdPromptsAreEncodedAsDiffusersDoes(param: String, path: String, message: String) throws {
        let temp = try TemporaryFolder()
        let graph = try Self.graph(model: Self.amused, """
            "text": {"stage": "encode_prompt", "inputs": {"model": "m"}, "params": {"prompt": "a boat", \(param)}}
            """, in: temp)
        let errors = try Self.errors(graph)
        #expect(errors.contains { $0.contains("node 'text' (nodes.text.\(path))") && $0.contains(message) }, "\(errors)")
    }

    @Test(arguments: ["vae_encode", "vae_decode"])
    func tilingATinyAutoencoderIsAValidationError(stage: String) throws {
        let temp = try TemporaryFolder()
        let nodes = stage == "vae_encode"
            ? #""vae": {"stage": "vae_encode", "inputs": {"model": "m", "image": "photo.image"}, "params": {"tiling": "on"}}"#
            : #""blank": {"stage": "empty_latent", "inputs": {"model": "m"}, "params": {"width": 64, "height": 64}},"#
                + #""vae": {"stage": "vae_decode", "inputs": {"model": "m", "latent": "blank.latent"}, "params": {"tiling": "on"}}"#
        let graph = try Self.graph(model: Self.sd4, options: #", "vae": "\#(Self.taesd)""#, nodes, in: temp)
        let errors = try Self.errors(graph)
        #expect(errors.contains { $0.contains("node 'vae' (nodes.vae.params.tiling)") && $0.contains("AutoencoderTiny") }, "\(errors)")
    }

    /// A 9-channel UNet takes the binarised mask as channels: soft_mask and original have no
    /// effect there, and validation says so (the graph still validates).
    @Test func softMaskAndOriginalOnANineChannelUNetWarnAtValidation() throws {
        let temp = try TemporaryFolder()
        let graph = try Self.graph(model: Self.sd9, """
            "mask": {"stage": "load_mask", "params": {"path": "\(Self.fixtures)/../../ChiselModelStagesTests/Fixtures/pipelines/mask.png"}},
            "sized": {"stage": "resize", "inputs": {"image": "photo.image"}, "params": {"width": 64, "multiple_of": 8}},
            "fit": {"stage": "match_mask", "inputs": {"image": "sized.image", "mask": "mask.mask"}},
            "text": {"stage": "encode_prompt", "inputs": {"model": "m"}, "params": {"prompt": "x"}},
            "latent": {"stage": "vae_encode", "inputs": {"model": "m", "image": "sized.image"}},
            "noised": {"stage": "add_noise", "inputs": {"model": "m", "latent": "latent.latent"}, "params": {"steps": 2}},
            "masked": {"stage": "vae_encode", "inputs": {"model": "m", "image": "sized.image", "mask": "fit.mask"}},
            "edited": {"stage": "denoise", "inputs": {"model": "m", "latent": "noised.latent", "conditioning": "text.conditioning",
                       "mask": "fit.mask", "masked_image": "masked.latent", "original": "latent.latent"},
                       "params": {"soft_mask": true}}
            """, in: temp)
        let result = try CLI.run(["validate", graph])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning: node 'edited': soft_mask applies to 4-channel latent blending"), "\(result.stderr)")
        #expect(result.stderr.contains("warning: node 'edited': original is for 4-channel models"), "\(result.stderr)")
    }

    @Test(arguments: [
        (#""latent": {"stage": "vae_encode", "inputs": {"model": "m", "image": "photo.image"}}"#, "latent"),
        (#""latent": {"stage": "empty_latent", "inputs": {"model": "m"}}"#, "latent"),
    ])
    func aStableDiffusionStageRefusesAnAMUSEdModel(node: String, id: String) throws {
        let temp = try TemporaryFolder()
        let errors = try Self.errors(try Self.graph(model: Self.amused, node, in: temp))
        #expect(errors.contains { $0.contains("node '\(id)' (nodes.\(id).inputs.model)") && $0.contains("aMUSEd") }, "\(errors)")
    }

    @Test(arguments: [
        (#""tokens": {"stage": "vq_encode", "inputs": {"model": "m", "image": "photo.image"}}"#, "tokens"),
        (#""tokens": {"stage": "empty_tokens", "inputs": {"model": "m"}}"#, "tokens"),
    ])
    func anAMUSEdStageRefusesAStableDiffusionModel(node: String, id: String) throws {
        let temp = try TemporaryFolder()
        let errors = try Self.errors(try Self.graph(model: Self.sd4, node, in: temp))
        #expect(errors.contains { $0.contains("node '\(id)' (nodes.\(id).inputs.model)") && $0.contains("Stable Diffusion") },
                "\(errors)")
    }

    @Test func blankLatentsAndGridsOfASizeTheModelCannotTakeAreValidationErrors() throws {
        let temp = try TemporaryFolder()
        let sd = try Self.errors(try Self.graph(model: Self.sd4, #"""
            "blank": {"stage": "empty_latent", "inputs": {"model": "m"}, "params": {"width": 65, "height": 64}}
            """#, in: temp))
        #expect(sd.contains { $0.contains("node 'blank' (nodes.blank.params.width)") && $0.contains("65 is not a multiple") }, "\(sd)")
        // The bundled scene model's tokens are 4 pixels wide.
        let mvtm = try Self.errors(try Self.graph(model: "builtin:scenes-mvtm", #"""
            "blank": {"stage": "empty_tokens", "inputs": {"model": "m"}, "params": {"height": 30}}
            """#, in: temp))
        #expect(mvtm.contains { $0.contains("node 'blank' (nodes.blank.params.height)") && $0.contains("30 is not a multiple") },
                "\(mvtm)")
    }
}
