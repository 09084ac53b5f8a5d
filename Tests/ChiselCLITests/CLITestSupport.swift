import ChiselCore
import ChiselImageIO
import ChiselModels
@_exported import ChiselTestSupport
import Foundation
import Testing

/// What one run of the `chisel` executable did.
struct CLIResult {
    var status: Int32
    /// True when the process died from a signal (a crash), not an exit.
    var crashed: Bool
    var stdout: String
    var stderr: String

    var errorLines: [String] { stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("error: ") } }
}

enum CLI {
    /// An infotext without the `Version` setting Chisel ends it with (which names this build, so
    /// changes with every commit), or nil when the text does not end with this build's version.
    static func withoutVersion(_ infotext: String?) -> String? {
        let suffix = ", Version: chisel " + ChiselVersion.text
        guard let infotext, infotext.hasSuffix(suffix) else { return nil }
        return String(infotext.dropLast(suffix.count))
    }

    /// The built `chisel` executable: $CHISEL_BIN, or next to the test bundle.
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["CHISEL_BIN"] { return URL(fileURLWithPath: path) }
        var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = folder.appendingPathComponent("chisel")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: ".build/debug/chisel")
    }

    /// The repository root, for samples/ and docs/.
    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// Runs `chisel` with `arguments` in `directory` and waits for it.
    static func run(_ arguments: [String], in directory: URL? = nil, executable: URL? = nil,
                    environment: [String: String] = [:]) throws -> CLIResult {
        let process = try start(arguments, in: directory, executable: executable, environment: environment)
        process.process.waitUntilExit()
        return process.result()
    }

    final class Running {
        let process: Process
        let outFile: URL
        let errFile: URL

        init(process: Process, outFile: URL, errFile: URL) {
            self.process = process
            self.outFile = outFile
            self.errFile = errFile
        }

        func result() -> CLIResult {
            let out = (try? String(contentsOf: outFile, encoding: .utf8)) ?? ""
            let err = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: outFile)
            try? FileManager.default.removeItem(at: errFile)
            return CLIResult(status: process.terminationStatus, crashed: process.terminationReason == .uncaughtSignal,
                             stdout: out, stderr: err)
        }
    }

    /// Starts `chisel` without waiting; output goes to files so large output cannot block it.
    static func start(_ arguments: [String], in directory: URL? = nil, executable: URL? = nil,
                      environment: [String: String] = [:]) throws -> Running {
        let process = Process()
        process.executableURL = executable ?? self.executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        if let directory { process.currentDirectoryURL = directory }
        let temp = FileManager.default.temporaryDirectory
        let outFile = temp.appendingPathComponent("chisel-out-\(UUID().uuidString)")
        let errFile = temp.appendingPathComponent("chisel-err-\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: outFile.path, contents: nil),
              FileManager.default.createFile(atPath: errFile.path, contents: nil) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temp.path])
        }
        process.standardOutput = try FileHandle(forWritingTo: outFile)
        process.standardError = try FileHandle(forWritingTo: errFile)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return Running(process: process, outFile: outFile, errFile: errFile)
    }
}

extension TemporaryFolder {
    /// Copies the repository's samples/ here, so runs write under this folder.
    func copySamples() throws -> URL {
        let target = url.appendingPathComponent("samples")
        try FileManager.default.copyItem(at: CLI.repository.appendingPathComponent("samples"), to: target)
        try? FileManager.default.removeItem(at: target.appendingPathComponent("out"))
        return target
    }
}

/// A test image with a smooth pattern that differs per `seed`.
func patternImage(width: Int, height: Int, layout: PixelLayout = .rgb, seed: Int = 0) throws -> Image {
    var pixels = [Float](repeating: 0, count: width * height * layout.channels)
    for c in 0..<layout.channels {
        for y in 0..<height {
            for x in 0..<width {
                let v = 0.5 + 0.5 * sin(Double(x * (c + 1) + seed) * 0.05 + Double(y) * 0.03 * Double(seed % 5 + 1))
                pixels[(c * height + y) * width + x] = Float(v)
            }
        }
    }
    return try Image(width: width, height: height, layout: layout, pixels: pixels)
}

func writeImage(_ image: Image, to path: String, bitDepth: Int? = nil) throws {
    let format: ImageFormat = path.hasSuffix(".png") ? .png : .jpeg
    try ImageWriter.write(image, to: path, options: ImageEncodeOptions(format: format, bitDepth: bitDepth))
}

/// The largest and mean difference, in 1/255, between a PNG a command wrote and the `output`
/// tensor (H×W×3 in [0, 1]) of a safetensors fixture at `fixture`.
func pixelDifference(_ output: String, fixture: String) throws -> (max: Float, mean: Float) {
    let image = try ImageReader.read(path: output).image.converted(to: .rgb)
    let reference = try SafeTensorsFile(path: fixture).floats("output")
    let n = image.width * image.height
    var maxDiff: Float = 0, sum: Float = 0
    for i in 0..<n {
        for c in 0..<3 {
            let d = abs(image.pixels[c * n + i] - reference[i * 3 + c])
            maxDiff = max(maxDiff, d)
            sum += d
        }
    }
    return (maxDiff * 255, sum / Float(3 * n) * 255)
}
