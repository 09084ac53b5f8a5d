import ChiselCore
import ChiselModels
import ChiselTensor
import Foundation
import Testing

/// TAESD's `AutoencoderTiny` against diffusers (tools/reference/taesd.py): a small random-weight
/// model read from its diffusers folder and from TAESD's own pair of files.
@Suite struct TinyAutoencoderTests {
    static var root: String { (Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.path ?? "Fixtures") + "/taesd" }

    @Test(arguments: ["tiny", "pair/taesd_decoder.safetensors", "pair/taesd_encoder.safetensors"])
    func encodeAndDecodeMatchDiffusers(location: String) throws {
        let expected = try SafeTensorsFile(path: Self.root + "/expected.safetensors")
        for precision in Precision.allCases {
            let vae = try VAESource.load(path: "\(Self.root)/\(location)", precision: precision)
            #expect(vae.className == "AutoencoderTiny" && vae.downscale == 2 && vae.latentChannels == 4)
            let bound = precision == .f32 ? 1e-4 : 0.03
            guard case .latents(let latents) = try vae.encodeLatents(Reference.nhwc(expected, "image")) else {
                Issue.record("an AutoencoderTiny encodes to latents, not a distribution")
                return
            }
            let reference = try Reference.nhwc(expected, "latents")
            #expect(latents.shape == reference.shape)
            #expect(relativeError(latents.data, reference.data) < bound, "\(location) \(precision) latents")
            let decoded = try vae.decode(reference)
            let expectedDecoded = try Reference.nhwc(expected, "decoded")
            #expect(decoded.shape == expectedDecoded.shape)
            #expect(relativeError(decoded.data, expectedDecoded.data) < bound, "\(location) \(precision) decoded")
        }
    }

    @Test func wrongFilesAreClearErrors() throws {
        let unet = Reference.root + "/sd1-tiny/unet/diffusion_pytorch_model.safetensors"
        #expect(throws: ChiselError.self) { try VAESource.load(path: unet, precision: .f32) }
        do {
            _ = try VAESource.load(path: Reference.root + "/sd1-tiny/unet", precision: .f32)
            Issue.record("a UNet folder loaded as a VAE")
        } catch let error as ChiselError {
            #expect(error.description.contains("UNet2DConditionModel") && error.description.contains("_class_name"), "\(error)")
        }
    }
}
