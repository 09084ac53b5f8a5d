import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// `ModelInspection` (behind `chisel model inspect`) on damaged copies of a real-layout folder.
@Suite struct InspectionTests {
    /// A fresh copy of the sd1-tiny diffusers folder.
    static func copyFolder() throws -> String {
        let target = temporaryPath("sd1-tiny")
        try FileManager.default.copyItem(atPath: Reference.root + "/sd1-tiny", toPath: target)
        return target
    }

    /// Rewrites a safetensors file's header with `edit`, keeping the data section as it is
    /// (or cut to `dataBytes`).
    static func rewrite(_ path: String, dataBytes: Int? = nil, _ edit: (inout [JSONMember]) -> Void) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var length = 0
        for i in 0..<8 { length |= Int(bytes[i]) << (8 * i) }
        guard var members = try JSONParser.parse(Array(bytes[8..<(8 + length)])).members else { return }
        edit(&members)
        var data = Array(bytes[(8 + length)...])
        if let dataBytes { data = Array(data.prefix(dataBytes)) }
        let header = Array(JSONValue.object(members).serialized().utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        try Data(out + header + data).write(to: URL(fileURLWithPath: path))
    }

    static func setShape(_ members: inout [JSONMember], _ name: String, _ shape: [Int]) {
        guard let i = members.firstIndex(where: { $0.key == name }), var entry = members[i].value.members else { return }
        if let s = entry.firstIndex(where: { $0.key == "shape" }) { entry[s].value = .array(shape.map(JSONValue.int)) }
        members[i].value = .object(entry)
    }

    static func setField(_ members: inout [JSONMember], _ name: String, _ key: String, _ value: JSONValue) {
        guard let i = members.firstIndex(where: { $0.key == name }), var entry = members[i].value.members else { return }
        if let s = entry.firstIndex(where: { $0.key == key }) { entry[s].value = value }
        members[i].value = .object(entry)
    }

    @Test func healthyFolderHasNoProblems() throws {
        let report = ModelInspection.inspect(path: Reference.root + "/sd1-tiny")
        #expect(report.problems.isEmpty, "\(report.problems)")
        #expect(report.family == "Stable Diffusion 1.x")
        #expect(report.inpainting == false && report.predictionType == "epsilon" && report.latentChannels == 4)
        #expect(report.components.map(\.name) == ["text_encoder", "vae", "unet"])
        #expect(report.components.allSatisfy { $0.parameters > 0 && $0.unused.isEmpty })
        let inpaint = ModelInspection.inspect(path: Reference.root + "/sd1-inpaint-tiny.safetensors",
                                              hints: try Reference.hints("sd1-inpaint-tiny"))
        #expect(inpaint.problems.isEmpty, "\(inpaint.problems)")
        #expect(inpaint.inpainting == true && inpaint.contextDimension == 32)
    }

    enum Damage: String, CaseIterable {
        case truncated, offsetsPastEnd, overlapping, unknownDtype, missingTensor, shapeContradictsConfig
    }

    @Test(arguments: Damage.allCases)
    func damageIsReportedWithFileAndTensor(damage: Damage) throws {
        let folder = try Self.copyFolder()
        let file = folder + "/unet/diffusion_pytorch_model.safetensors"
        let original = try SafeTensorsFile(path: file)
        // conv_in.weight: 16×4×3×3 in F16.
        let victim = "conv_in.weight"
        let range = try original.info(victim).dataRange
        let last = original.names.last ?? victim
        var expectedTensor = victim
        var message = ""
        switch damage {
        case .truncated:
            let end = try original.info(last).dataRange.upperBound
            try Self.rewrite(file, dataBytes: end - 10) { _ in }
            expectedTensor = last
            message = "point past the end"
        case .offsetsPastEnd:
            try Self.rewrite(file) { Self.setField(&$0, victim, "data_offsets", .array([.int(range.lowerBound), .int(range.lowerBound + 1_000_000)])) }
            message = "point past the end"
        case .overlapping:
            let other = original.names.first { $0 != victim && (try? original.info($0).dataRange.count) == range.count
                && (try? original.info($0).dtype) == .f16 } ?? victim
            try Self.rewrite(file) { Self.setField(&$0, other, "data_offsets", .array([.int(range.lowerBound), .int(range.upperBound)])) }
            #expect(other != victim)
            // Two tensors at one offset: the one sorted second (by name) is reported.
            expectedTensor = max(victim, other)
            message = "overlaps"
        case .unknownDtype:
            try Self.rewrite(file) { Self.setField(&$0, victim, "dtype", "Q4") }
            message = "unknown dtype 'Q4'"
        case .missingTensor:
            try Self.rewrite(file) { $0.removeAll { $0.key == victim } }
            message = "missing tensor"
        case .shapeContradictsConfig:
            try Self.rewrite(file) { Self.setShape(&$0, victim, [8, 8, 3, 3]) }
            message = "does not match the configuration's [16, 4, 3, 3]"
        }
        let report = ModelInspection.inspect(path: folder)
        let problem = report.problems.first { $0.message.contains(message) }
        #expect(problem != nil, "\(damage): \(report.problems.map(\.description))")
        #expect(problem?.file?.contains("unet") == true, "\(problem?.description ?? "")")
        #expect(problem?.tensor == expectedTensor, "\(problem?.description ?? "")")
        // The other components are still inspected.
        #expect(report.components.contains { $0.name == "vae" })
    }

    @Test func brokenConfigIsNamed() throws {
        let folder = try Self.copyFolder()
        try #"{"in_channels": "four"}"#.write(toFile: folder + "/unet/config.json", atomically: true, encoding: .utf8)
        let report = ModelInspection.inspect(path: folder)
        #expect(report.problems.contains { $0.file == folder + "/unet/config.json" && $0.message.contains("in_channels") })
    }

    @Test func picklesAndForeignFilesAreRefused() throws {
        let folder = try Self.copyFolder()
        try FileManager.default.removeItem(atPath: folder + "/vae/diffusion_pytorch_model.safetensors")
        try Data([0x80, 0x02]).write(to: URL(fileURLWithPath: folder + "/vae/diffusion_pytorch_model.bin"))
        let report = ModelInspection.inspect(path: folder)
        #expect(report.problems.contains { $0.message.contains("pickle") && $0.file?.hasSuffix(".bin") == true })
        var builder = SafeTensorsBuilder()
        builder.addF32("weight", shape: [2], values: [1, 2])
        let foreign = temporaryPath("foreign.safetensors")
        try builder.write(to: foreign)
        let other = ModelInspection.inspect(path: foreign)
        #expect(other.problems.first?.message.contains("not a Stable Diffusion single-file checkpoint") == true)
    }
}
