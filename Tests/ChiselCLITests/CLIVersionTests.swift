import ChiselCore
import ChiselImageIO
import Foundation
import Testing

/// `chisel --version`, and the version the images carry.
@Suite struct CLIVersionTests {
    @Test func versionPrintsTheNumberAndThisCheckoutsCommit() throws {
        let result = try CLI.run(["--version"])
        #expect(result.status == 0, "\(result.stderr)")
        let printed = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(printed == ChiselVersion.text)
        // The test binary is a development build inside this checkout: its commit is HEAD's.
        if let head = ChiselVersion.head(ofCheckout: CLI.repository.path) {
            #expect(printed == "\(ChiselVersion.number)-dev+\(head.prefix(12))")
        }
    }

    @Test func editedImagesSayWhichChiselWroteThem() throws {
        let temp = try TemporaryFolder()
        let result = try CLI.run(["img2img", "--model", CLIComfyTests.model, "--image", CLIComfyTests.image, "--prompt", "a boat",
                                  "--steps", "2", "--output", temp.path("out.png")])
        #expect(result.status == 0, "\(result.stderr)")
        let parameters = try ImageReader.read(path: temp.path("out.png")).text(forKey: "parameters") ?? ""
        #expect(parameters.hasSuffix(", Version: chisel \(ChiselVersion.text)"), "\(parameters)")
        // Read back as A1111's parser reads it, the version is one more setting, not part of another.
        #expect(GenerationInfo.parse(parameters)?.value("Version") == "chisel \(ChiselVersion.text)")
    }
}
