import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// samples/stage-package, a package outside Chisel that depends on it by path, adds a stage
/// and builds its own `chisel-vignette` from `ChiselCLI`: built and driven here as its users would.
@Suite(.serialized) struct CLIStagePackageTests {
    static var package: URL { CLI.repository.appendingPathComponent("samples/stage-package") }
    /// Kept between runs (and ignored by git), so a rebuild is incremental.
    static var scratch: URL { CLI.repository.appendingPathComponent(".build-stage-package") }

    /// Builds the package once per test process; the executable, or the build's output on failure.
    /// The build is awaited without holding a thread, so tests running beside it (some poll a
    /// process with `Task.sleep`) are not starved while it compiles.
    static func executable() async throws -> URL {
        try await BuildOnce.shared.result().get()
    }

    actor BuildOnce {
        static let shared = BuildOnce()
        private var task: Task<Result<URL, BuildFailure>, Never>?

        func result() async -> Result<URL, BuildFailure> {
            if let task { return await task.value }
            let task = Task { () -> Result<URL, BuildFailure> in
                if case .success(let url) = await CLIStagePackageTests.build() { return .success(url) }
                // SwiftPM can trip over a stale scratch folder after Chisel's modules changed: build again from clean.
                try? FileManager.default.removeItem(at: CLIStagePackageTests.scratch)
                return await CLIStagePackageTests.build()
            }
            self.task = task
            return await task.value
        }
    }

    static func build() async -> Result<URL, BuildFailure> {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // With its test target, which the package's users run with `swift test`.
        process.arguments = ["swift", "build", "--build-tests", "--package-path", package.path, "--scratch-path", scratch.path]
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("stage-package-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        guard let handle = try? FileHandle(forWritingTo: log) else {
            return .failure(BuildFailure(output: "cannot write the build log \(log.path)"))
        }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        let started: Bool = await withCheckedContinuation { done in
            process.terminationHandler = { _ in done.resume(returning: true) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                done.resume(returning: false)
            }
        }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(at: log)
        guard started, process.terminationStatus == 0 else {
            return .failure(BuildFailure(output: String(output.suffix(4000))))
        }
        return .success(scratch.appendingPathComponent("debug/chisel-vignette"))
    }

    struct BuildFailure: Error, CustomStringConvertible {
        var output: String
        var description: String { "swift build of samples/stage-package failed:\n\(output)" }
    }

    static func graph(in temp: TemporaryFolder, strength: Double = 0.6, radius: Double = 1) throws -> String {
        let image = CLI.repository.appendingPathComponent("samples/images/lake.png").path
        return try temp.write("""
            {"chisel": 1, "nodes": {
              "photo": {"stage": "load_image", "params": {"path": "\(image)"}},
              "dark": {"stage": "vignette", "inputs": {"image": "photo.image"},
                       "params": {"strength": \(strength), "radius": \(radius)}},
              "save": {"stage": "save_image", "inputs": {"image": "dark.image"}, "params": {"path": "{stem}-vignette.png"}}
            }, "batch": {"image": "photo"}}
            """, to: "vignette.json")
    }

    /// The package's own test target (docs/custom-stages.md, step 4) passes.
    @Test func thePackagesOwnTestsPass() async throws {
        _ = try await Self.executable()
        let result = try CLI.run(["swift", "test", "--skip-build", "--package-path", Self.package.path, "--scratch-path", Self.scratch.path],
                                 executable: URL(fileURLWithPath: "/usr/bin/env"))
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect((result.stdout + result.stderr).contains("cornersDarkenCentreStays() passed"))
    }

    @Test func itsOwnStageRunsThroughRunValidateAndBatch() async throws {
        let binary = try await Self.executable()
        let temp = try TemporaryFolder()
        let graph = try Self.graph(in: temp)

        let stages = try CLI.run(["stages"], executable: binary)
        #expect(stages.status == 0)
        #expect(stages.stdout.contains("vignette"), "the package's stage is registered")
        #expect(stages.stdout.contains("resize"), "with the built-in stages")

        let validation = try CLI.run(["validate", graph], executable: binary)
        #expect(validation.status == 0, "\(validation.stderr)")
        #expect(validation.stdout.contains("valid (3 nodes)"))

        let run = try CLI.run(["run", graph], executable: binary)
        #expect(run.status == 0, "\(run.stderr)")
        let output = temp.path("lake-vignette.png")
        #expect(run.stdout.contains("wrote \(output)"))
        let original = try ImageReader.read(path: CLI.repository.appendingPathComponent("samples/images/lake.png").path).image
        let darkened = try ImageReader.read(path: output).image
        #expect(darkened.width == original.width && darkened.height == original.height)
        // The corner darkens by the strength; the centre stays within a rounding step.
        #expect(darkened.pixels[0] < original.pixels[0] * 0.5)
        let centre = (original.height / 2) * original.width + original.width / 2
        #expect(abs(darkened.pixels[centre] - original.pixels[centre]) < 0.02)

        let outputs = temp.path("batch-out")
        let batch = try CLI.run(["batch", graph, "--input", CLI.repository.appendingPathComponent("samples/batch").path,
                                 "--output", outputs], executable: binary)
        #expect(batch.status == 0, "\(batch.stderr)")
        let inputs = try FileManager.default.contentsOfDirectory(atPath: CLI.repository.appendingPathComponent("samples/batch").path)
            .filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }
        let written = try FileManager.default.contentsOfDirectory(atPath: outputs).filter { $0.hasSuffix("-vignette.png") }
        #expect(written.count == inputs.count && !written.isEmpty)
    }

    @Test func itsStagesRulesAreCheckedByValidateAndItsErrorsExitOne() async throws {
        let binary = try await Self.executable()
        let temp = try TemporaryFolder()
        let graph = try Self.graph(in: temp, radius: 0.1)
        let result = try CLI.run(["validate", graph], executable: binary)
        #expect(result.status == 1)
        #expect(result.errorLines == ["error: \(graph): node 'dark' (nodes.dark.params.radius): a radius under 0.25 "
                                      + "with a nonzero strength blacks out most of the image"])
        let usage = try CLI.run(["validate", graph, "--var", "nonsense"], executable: binary)
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("see 'chisel-vignette help'"))
    }
}
