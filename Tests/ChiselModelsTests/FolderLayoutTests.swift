import ChiselCore
import ChiselTensor
import Foundation
import Testing

@testable import ChiselModels

/// The other file layouts of a diffusers folder: sharded weights with an index, `.fp16`
/// variants, and configs that contradict each other.
@Suite struct FolderLayoutTests {
    /// Writes the tensors `names` of `file` (raw bytes, same dtypes) to a new safetensors file.
    static func writeSubset(of file: SafeTensorsFile, names: [String], to path: String) throws {
        var entries: [JSONMember] = []
        var data: [UInt8] = []
        for name in names {
            let info = try file.info(name)
            let begin = data.count
            try file.withBytes(name) { data += $0 }
            entries.append(JSONMember(key: name, value: .object([
                JSONMember(key: "dtype", value: .string(info.dtype.rawValue)),
                JSONMember(key: "shape", value: .array(info.shape.map(JSONValue.int))),
                JSONMember(key: "data_offsets", value: .array([.int(begin), .int(data.count)])),
            ])))
        }
        let header = Array(JSONValue.object(entries).serialized().utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        try Data(out + header + data).write(to: URL(fileURLWithPath: path))
    }

    static func unetOutput(_ model: StableDiffusionModel) throws -> [Float] {
        let reference = try Reference.expected("sd1-tiny", "unet")
        let context = try Tensor(shape: try reference.info("encoder_hidden_states").shape,
                                 data: try reference.floats("encoder_hidden_states"))
        return try model.unet(Reference.nhwc(reference, "sample"), timesteps: [999, 1], context: context).data
    }

    @Test func shardedWeightsWithAnIndexLoad() throws {
        let folder = try InspectionTests.copyFolder()
        let unet = folder + "/unet/diffusion_pytorch_model.safetensors"
        let file = try SafeTensorsFile(path: unet)
        let names = file.names
        let half = names.count / 2
        try Self.writeSubset(of: file, names: Array(names[..<half]), to: folder + "/unet/diffusion_pytorch_model-00001-of-00002.safetensors")
        try Self.writeSubset(of: file, names: Array(names[half...]), to: folder + "/unet/diffusion_pytorch_model-00002-of-00002.safetensors")
        let map = names.enumerated().map { i, name in
            JSONMember(key: name, value: .string("diffusion_pytorch_model-0000\(i < half ? 1 : 2)-of-00002.safetensors"))
        }
        try JSONValue.object([JSONMember(key: "metadata", value: .object([])), JSONMember(key: "weight_map", value: .object(map))])
            .serialized().write(toFile: folder + "/unet/diffusion_pytorch_model.safetensors.index.json", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: unet)
        let sharded = try StableDiffusionModel.load(path: folder)
        let original = try StableDiffusionModel.load(path: Reference.root + "/sd1-tiny")
        #expect(try Self.unetOutput(sharded) == Self.unetOutput(original))
        // A shard the index names but that is missing is an error naming it.
        try FileManager.default.removeItem(atPath: folder + "/unet/diffusion_pytorch_model-00002-of-00002.safetensors")
        let error = expectModelError { _ = try StableDiffusionModel.load(path: folder) }
        #expect(error?.file?.hasSuffix("diffusion_pytorch_model-00002-of-00002.safetensors") == true)
    }

    @Test func fp16VariantFilesLoad() throws {
        let folder = try InspectionTests.copyFolder()
        for (component, base) in [("unet", "diffusion_pytorch_model"), ("vae", "diffusion_pytorch_model"), ("text_encoder", "model")] {
            try FileManager.default.moveItem(atPath: "\(folder)/\(component)/\(base).safetensors",
                                             toPath: "\(folder)/\(component)/\(base).fp16.safetensors")
        }
        let variant = try StableDiffusionModel.load(path: folder)
        let explicit = try StableDiffusionModel.load(path: folder, variant: "fp16")
        let original = try StableDiffusionModel.load(path: Reference.root + "/sd1-tiny")
        #expect(try Self.unetOutput(variant) == Self.unetOutput(original))
        #expect(try Self.unetOutput(explicit) == Self.unetOutput(original))
        let missing = expectModelError { _ = try StableDiffusionModel.load(path: folder, variant: "bf16") }
        #expect(missing?.message.contains("no model.safetensors") == true || missing?.message.contains("no diffusion_pytorch_model") == true)
    }

    @Test func contradictoryConfigsAreNamed() throws {
        let folder = try InspectionTests.copyFolder()
        let path = folder + "/unet/config.json"
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"cross_attention_dim\": 32", with: "\"cross_attention_dim\": 48")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let error = expectModelError { _ = try StableDiffusionModel.load(path: folder) }
        #expect(error?.file == folder)
        #expect(error?.message == "the UNet's cross_attention_dim 48 does not match the text encoder's hidden_size 32",
                "\(error?.description ?? "")")
        // Inspection builds the UNet on its own: its attention weights (32 wide) contradict its config.
        let report = ModelInspection.inspect(path: folder)
        let shape = report.problems.first { $0.tensor?.contains("attn2.to_k.weight") == true }
        #expect(shape?.message.contains("does not match the configuration's [16, 48]") == true, "\(report.problems)")
    }
}
