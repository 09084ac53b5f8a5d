import ChiselCore
import ChiselImageIO
import ChiselModels
import ChiselTensor
import Foundation
import Testing

/// Tiled VAE encoding and decoding against diffusers' `vae.enable_tiling()` (tools/reference/
/// tiling.py, on sd1-tiny, whose 32-pixel sample_size makes tiles of the fixtures' small images).
@Suite struct CLITilingTests {
    static let fixtures = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/tiling").path
    static let model = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference/sd1-tiny").path
    static let image = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines/image.png").path

    static func nhwc(_ file: SafeTensorsFile, _ name: String) throws -> Tensor {
        let shape = try file.info(name).shape
        return try Tensor.fromNCHW(file.floats(name), n: shape[0], c: shape[1], h: shape[2], w: shape[3])
    }

    static func relative(_ actual: [Float], _ expected: [Float]) -> Double {
        let scale = expected.map { abs(Double($0)) }.max() ?? 1
        let worst = zip(actual, expected).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
        return actual.count == expected.count ? worst / max(scale, 1e-12) : .infinity
    }

    @Test func tiledEncodeAndDecodeMatchDiffusers() throws {
        let expected = try SafeTensorsFile(path: Self.fixtures + "/vae.safetensors")
        let model = try StableDiffusionModel.load(path: Self.model)
        let vae = try #require(model.vae as? AutoencoderKL)
        // 88×56: three columns and three rows of tiles, the last ones partial.
        #expect(vae.tilesEncode(width: 88, height: 56) && vae.tilesDecode(width: 44, height: 28))
        let (mean, std) = try vae.encodeTiled(Self.nhwc(expected, "image"))
        let expectedMean = try Self.nhwc(expected, "mean")
        #expect(mean.shape == expectedMean.shape)
        #expect(Self.relative(mean.data, expectedMean.data) < 1e-4)
        #expect(Self.relative(std.data, try Self.nhwc(expected, "std").data) < 1e-4)
        let decoded = try vae.decodeTiled(Self.nhwc(expected, "latent"))
        let expectedDecoded = try Self.nhwc(expected, "decoded")
        #expect(decoded.shape == expectedDecoded.shape)
        #expect(Self.relative(decoded.data, expectedDecoded.data) < 1e-4)
        // Untiled, the same latent decodes to another image near the seams.
        #expect(Self.relative(try vae.decode(Self.nhwc(expected, "latent")).data, expectedDecoded.data) > 1e-2)
    }

    func edit(_ tiling: String, to out: String, extra: [String] = []) throws -> CLIResult {
        try CLI.run(["img2img", "--model", Self.model, "--image", Self.image,
                     "--prompt", "a red fox sitting in a snowy forest, highly detailed", "--negative-prompt", "blurry, low quality",
                     "--strength", "0.6", "--steps", "10", "--guidance", "7.5", "--seed", "12", "--vae-tiling", tiling,
                     "--output", out] + extra)
    }

    @Test func img2imgWithTilingOnGivesDiffusersImage() throws {
        let temp = try TemporaryFolder()
        let (tiled, plain) = (temp.path("tiled.png"), temp.path("plain.png"))
        let result = try edit("on", to: tiled)
        #expect(result.status == 0, "\(result.stderr)")
        let expected = try SafeTensorsFile(path: Self.fixtures + "/img2img_sd1_tiled.safetensors").floats("image")
        let (worst, mean) = try CLILoRATests.difference(tiled, expected)
        #expect(worst <= 2.5 / 255 && mean <= 0.5 / 255, "max \(worst * 255)/255, mean \(mean * 255)/255")
        // auto leaves an image this small untiled, as off does: another image.
        #expect(try edit("auto", to: plain).status == 0)
        let (_, away) = try CLILoRATests.difference(plain, expected)
        #expect(away > 5 * mean, "untiled mean difference \(away * 255)/255")
    }

    @Test func tilingATinyAutoencoderIsAnError() throws {
        let temp = try TemporaryFolder()
        let taesd = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/taesd/tiny").path
        let result = try edit("on", to: temp.path("o.png"), extra: ["--vae", taesd])
        #expect(result.status != 0 && !result.crashed)
        #expect(result.stderr.contains("tiling applies to AutoencoderKL") && result.stderr.contains("AutoencoderTiny"), "\(result.stderr)")
    }
}
