import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// `builtin:NAME` models and the commands' default model, with `CHISEL_MODELS` pointing at a
/// folder that holds small models in the bundled models' places.
@Suite struct CLIBuiltinModelTests {
    static let fixtures = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures").path

    /// A CHISEL_MODELS folder: the tiny SD model as scenes-sd, the small aMUSEd one as scenes-mvtm.
    static func modelsFolder(_ temp: TemporaryFolder) throws -> String {
        let folder = temp.path("models")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder + "/scenes-sd",
                                                   withDestinationPath: fixtures + "/reference/sd1-tiny")
        try FileManager.default.createSymbolicLink(atPath: folder + "/scenes-mvtm",
                                                   withDestinationPath: fixtures + "/amused/small")
        return folder
    }

    @Test func editsWithoutModelUseTheBuiltinSceneModels() throws {
        let temp = try TemporaryFolder()
        let environment = ["CHISEL_MODELS": try Self.modelsFolder(temp)]
        let input = temp.path("in.png")
        try writeImage(try patternImage(width: 32, height: 32), to: input)
        let first = temp.path("a.png"), second = temp.path("b.png")
        for out in [first, second] {
            let result = try CLI.run(["img2img", "--image", input, "--prompt", "a lake at sunset", "--steps", "4",
                                      "--strength", "0.5", "--seed", "3", "--output", out], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
        }
        // It is the SD model that ran (the PNG says so), and the seed reproduces it.
        let png = try ImageReader.read(path: first)
        #expect(png.text(forKey: "parameters")?.contains("Denoising strength: 0.5") == true)
        #expect(png.image.pixels == (try ImageReader.read(path: second)).image.pixels)

        let refined = temp.path("refined.png")
        let refine = try CLI.run(["refine", "--image", input, "--output", refined], environment: environment)
        #expect(refine.status == 0, "\(refine.stderr)")
        #expect(FileManager.default.fileExists(atPath: refined))
    }

    @Test func graphsNameBuiltinModels() throws {
        let temp = try TemporaryFolder()
        let environment = ["CHISEL_MODELS": try Self.modelsFolder(temp)]
        let graph = try temp.write("""
            {"chisel": 1, "models": {"sd": {"path": "builtin:scenes"}},
             "nodes": {"text": {"stage": "encode_prompt", "inputs": {"model": "sd"}, "params": {"prompt": "a lake"}}}}
            """, to: "g.json")
        let good = try CLI.run(["validate", graph], environment: environment)
        #expect(good.status == 0, "\(good.stderr)")
        let bad = try temp.write("""
            {"chisel": 1, "models": {"sd": {"path": "builtin:nonesuch"}},
             "nodes": {"text": {"stage": "encode_prompt", "inputs": {"model": "sd"}, "params": {"prompt": "a lake"}}}}
            """, to: "bad.json")
        let result = try CLI.run(["validate", bad], environment: environment)
        #expect(result.status != 0)
        #expect(result.stderr.contains("models.sd.path"), "\(result.stderr)")
        #expect(result.stderr.contains("no built-in model 'nonesuch'"), "\(result.stderr)")
        #expect(result.stderr.contains("builtin:scenes, builtin:scenes-mvtm"), "\(result.stderr)")
    }

    @Test func inspectDescribesBuiltinModels() throws {
        let temp = try TemporaryFolder()
        let environment = ["CHISEL_MODELS": try Self.modelsFolder(temp)]
        let sd = try CLI.run(["model", "inspect", "builtin:scenes"], environment: environment)
        #expect(sd.status == 0, "\(sd.stderr)")
        #expect(sd.stdout.contains("scenes-sd") && sd.stdout.contains("unet"), "\(sd.stdout)")
        let mvtm = try CLI.run(["model", "inspect", "builtin:scenes-mvtm"], environment: environment)
        #expect(mvtm.status == 0, "\(mvtm.stderr)")
        #expect(mvtm.stdout.contains("scenes-mvtm") && mvtm.stdout.contains("transformer"), "\(mvtm.stdout)")
    }

    @Test func anUnknownBuiltinModelIsAClearError() throws {
        let temp = try TemporaryFolder()
        let input = temp.path("in.png")
        try writeImage(try patternImage(width: 16, height: 16), to: input)
        let result = try CLI.run(["img2img", "--model", "builtin:nonesuch", "--image", input, "--output", temp.path("o.png")])
        #expect(result.status != 0 && !result.crashed)
        #expect(result.errorLines.count == 1 && result.stderr.contains("no built-in model 'nonesuch'"), "\(result.stderr)")
    }
}
