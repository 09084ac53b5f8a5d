import ChiselCore
import Foundation
import Testing

@testable import ChiselModels

/// Builds safetensors files byte by byte, so each test controls exactly what the header says.
struct SafeTensorsBuilder {
    var entries: [(name: String, json: String)] = []
    var data: [UInt8] = []
    var metadata: String?

    /// Appends a little-endian F32 tensor with a consistent header entry.
    mutating func addF32(_ name: String, shape: [Int], values: [Float]) {
        let begin = data.count
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        entries.append((name, #"{"dtype":"F32","shape":\#(shape),"data_offsets":[\#(begin),\#(data.count)]}"#))
    }

    mutating func addRaw(_ name: String, json: String, bytes: [UInt8] = []) {
        data += bytes
        entries.append((name, json))
    }

    func header() -> String {
        var parts = entries.map { "\"\($0.name)\":\($0.json)" }
        if let metadata { parts.insert("\"__metadata__\":\(metadata)", at: 0) }
        return "{" + parts.joined(separator: ",") + "}"
    }

    func bytes(header override: String? = nil) -> [UInt8] {
        let text = Array((override ?? header()).utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(text.count).littleEndian) { out += $0 }
        return out + text + data
    }

    func write(to path: String, header: String? = nil) throws {
        try Data(bytes(header: header)).write(to: URL(fileURLWithPath: path))
    }
}

func temporaryPath(_ name: String) -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chisel-models-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.appendingPathComponent(name).path
}

/// The ChiselError thrown by `body`, or a recorded issue.
func expectModelError(_ body: () throws -> Void) -> ChiselError? {
    do {
        try body()
        Issue.record("expected an error")
    } catch let error as ChiselError {
        return error
    } catch {
        Issue.record("unexpected error \(error)")
    }
    return nil
}

@Suite struct SafeTensorsTests {
    @Test func readsF32F16BF16AndMetadata() throws {
        var builder = SafeTensorsBuilder()
        builder.metadata = #"{"format":"pt"}"#
        builder.addF32("a.weight", shape: [2, 3], values: [1, -2, 3.5, 0, 1e-3, -7])
        // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 = 0x7BFF, smallest subnormal 0x0001.
        builder.addRaw("b", json: #"{"dtype":"F16","shape":[4],"data_offsets":[24,32]}"#,
                       bytes: [0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x01, 0x00])
        // BF16: 1.0 = 0x3F80, -0.5 = 0xBF00.
        builder.addRaw("c", json: #"{"dtype":"BF16","shape":[2],"data_offsets":[32,36]}"#, bytes: [0x80, 0x3F, 0x00, 0xBF])
        builder.addRaw("ids", json: #"{"dtype":"I64","shape":[1],"data_offsets":[36,44]}"#, bytes: [5, 0, 0, 0, 0, 0, 0, 0])
        builder.addRaw("empty", json: #"{"dtype":"F32","shape":[0,4],"data_offsets":[44,44]}"#)
        let path = temporaryPath("ok.safetensors")
        try builder.write(to: path)

        let file = try SafeTensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(Set(file.tensors.keys) == ["a.weight", "b", "c", "ids", "empty"])
        #expect(try file.info("a.weight").shape == [2, 3])
        #expect(try file.floats("a.weight") == [1, -2, 3.5, 0, 1e-3, -7])
        #expect(try file.floats("b") == [1, -2, 65504, Float(bitPattern: 0x3380_0000)])
        #expect(try file.floats("c") == [1, -0.5])
        #expect(try file.floats("empty") == [])
        #expect(try file.withBytes("ids") { Array($0) } == [5, 0, 0, 0, 0, 0, 0, 0])
        #expect(try file.integers("ids") == [5])
        #expect(throws: ChiselError.self) { try file.integers("a.weight") }
        let notFloat = expectModelError { _ = try file.floats("ids") }
        #expect(notFloat?.tensor == "ids")
        let missing = expectModelError { _ = try file.info("nope") }
        #expect(missing?.description == "\(path): tensor 'nope': no such tensor in the file")
    }

    @Test func halfPrecisionConversionCoversSpecialValues() {
        #expect(FloatConversion.halfToFloat(0x7C00) == .infinity)
        #expect(FloatConversion.halfToFloat(0xFC00) == -.infinity)
        #expect(FloatConversion.halfToFloat(0x7E00).isNaN)
        #expect(FloatConversion.halfToFloat(0x8000).bitPattern == (-0.0 as Float).bitPattern)
        #expect(FloatConversion.halfToFloat(0x03FF) == Float(1023) * pow(2, -24))
        #expect(FloatConversion.halfToFloat(0x3555) == 0.333251953125)
    }

    /// Each malformed file is a clear error naming the file and, where one is at fault, the tensor.
    enum Damage: String, CaseIterable {
        case empty, shortLength, truncatedHeader, headerNotJSON, headerNotObject, hugeHeaderLength
        case offsetsPastEnd, overlapping, unknownDtype, shapeContradictsBytes, negativeShape
        case badOffsets, duplicateName, truncatedData, metadataNotStrings
    }

    static func damaged(_ damage: Damage) -> (bytes: [UInt8], tensor: String?, message: String) {
        var good = SafeTensorsBuilder()
        good.addF32("x", shape: [2, 2], values: [1, 2, 3, 4])
        good.addF32("y", shape: [2], values: [5, 6])
        let goodBytes = good.bytes()
        switch damage {
        case .empty: return ([], nil, "too short")
        case .shortLength: return ([1, 2, 3], nil, "too short")
        case .truncatedHeader: return (Array(goodBytes.prefix(20)), nil, "runs past the end")
        case .headerNotJSON: return (good.bytes(header: #"{"x": [1, 2"#), nil, "header is not valid JSON")
        case .headerNotObject: return (good.bytes(header: "[1]"), nil, "header is not a JSON object")
        case .hugeHeaderLength: return ([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F] + Array("{}".utf8), nil, "implausibly large")
        case .offsetsPastEnd:
            var b = good
            b.entries[1].json = #"{"dtype":"F32","shape":[2],"data_offsets":[16,4000]}"#
            return (b.bytes(), "y", "point past the end")
        case .overlapping:
            var b = good
            b.entries[1].json = #"{"dtype":"F32","shape":[2],"data_offsets":[8,16]}"#
            return (b.bytes(), "y", "overlaps 'x'")
        case .unknownDtype:
            var b = good
            b.entries[0].json = #"{"dtype":"F12","shape":[2,2],"data_offsets":[0,16]}"#
            return (b.bytes(), "x", "unknown dtype 'F12'")
        case .shapeContradictsBytes:
            var b = good
            b.entries[0].json = #"{"dtype":"F32","shape":[3,2],"data_offsets":[0,16]}"#
            return (b.bytes(), "x", "needs 24 bytes but data_offsets [0, 16] hold 16")
        case .negativeShape:
            var b = good
            b.entries[0].json = #"{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}"#
            return (b.bytes(), "x", "is not a list of sizes")
        case .badOffsets:
            var b = good
            b.entries[0].json = #"{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}"#
            return (b.bytes(), "x", "data_offsets must be")
        case .duplicateName:
            var b = good
            b.entries[1].name = "x"
            return (b.bytes(), "x", "listed twice")
        case .truncatedData: return (Array(goodBytes.dropLast(3)), "y", "point past the end")
        case .metadataNotStrings:
            var b = good
            b.metadata = #"{"epoch": 3}"#
            return (b.bytes(), nil, "is not a string")
        }
    }

    @Test(arguments: Damage.allCases)
    func malformedFilesAreClearErrors(damage: Damage) throws {
        let (bytes, tensor, message) = Self.damaged(damage)
        let path = temporaryPath("\(damage.rawValue).safetensors")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = expectModelError { _ = try SafeTensorsFile(path: path) }
        #expect(error?.file == path)
        #expect(error?.tensor == tensor)
        #expect(error?.message.contains(message) == true, "\(error?.description ?? "")")
    }

    /// A shape whose element count overflows is printed as JSON, not as Swift's enum dump.
    @Test func anOverflowingShapeIsPrintedAsWritten() throws {
        var builder = SafeTensorsBuilder()
        builder.addRaw("huge", json: #"{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,0]}"#)
        let path = temporaryPath("huge.safetensors")
        try builder.write(to: path)
        let error = expectModelError { _ = try SafeTensorsFile(path: path) }
        #expect(error?.message.contains("shape [4611686018427387904,8] overflows") == true, "\(String(describing: error))")
        #expect(error?.message.contains("JSONValue") == false)
    }

    @Test func missingFileAndFolderAreIOErrors() throws {
        let missing = expectModelError { _ = try SafeTensorsFile(path: "/nonexistent/model.safetensors") }
        #expect(missing?.code == .io)
        let folder = expectModelError { _ = try SafeTensorsFile(path: NSTemporaryDirectory()) }
        #expect(folder?.code == .io)
    }

    @Test(arguments: ["model.ckpt", "model.pt", "pytorch_model.bin", "weights.pth"])
    func picklesAreRefusedByName(name: String) throws {
        let path = temporaryPath(name)
        try Data([0x80, 0x02, 0x7D]).write(to: URL(fileURLWithPath: path))
        let error = expectModelError { _ = try SafeTensorsFile(path: path) }
        #expect(error?.message.contains("can execute arbitrary code") == true)
        #expect(error?.message.contains("safetensors") == true)
    }

    @Test func picklesAreRefusedByContentWhateverTheName() throws {
        for head: [UInt8] in [[0x80, 0x04, 0x95], [0x50, 0x4B, 0x03, 0x04]] {
            let path = temporaryPath("disguised.safetensors")
            try Data(head + [UInt8](repeating: 0, count: 32)).write(to: URL(fileURLWithPath: path))
            let error = expectModelError { _ = try SafeTensorsFile(path: path) }
            #expect(error?.message.contains("pickle") == true)
        }
    }

    /// A header of 0x480 bytes starts with the bytes of a pickle's PROTO 4 opcode; the JSON after
    /// the length tells them apart.
    @Test func safetensorsWhoseHeaderLengthLooksLikeAPickleOpcodeIsRead() throws {
        var builder = SafeTensorsBuilder()
        builder.addF32("x", shape: [1], values: [1])
        let header = builder.header()
        let opening = header.dropLast() + ",\"__metadata__\":{\"pad\":\""
        let padded = opening + String(repeating: " ", count: 0x480 - opening.utf8.count - 3) + "\"}}"
        #expect(padded.utf8.count == 0x480)
        let path = temporaryPath("model.safetensors")
        try builder.write(to: path, header: String(padded))
        let file = try SafeTensorsFile(path: path)
        #expect(try file.floats("x") == [1])
    }
}
