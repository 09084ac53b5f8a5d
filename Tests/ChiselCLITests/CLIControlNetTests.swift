import ChiselCore
import ChiselImageIO
import ChiselModels
import Foundation
import Testing

/// `chisel img2img` / `chisel inpaint` with `--controlnet`: diffusers' ControlNet pipelines'
/// pixels from the command line (tools/reference/controlnet.py; the PNG's 8 bits add half a
/// level), the preprocessors in the graph, AUTOMATIC1111's ControlNet infotext, and the errors a
/// stranger's arguments get.
@Suite struct CLIControlNetTests {
    static let references = CLI.repository.appendingPathComponent("Tests/ChiselModelsTests/Fixtures/reference").path
    static let fixtures = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/controlnet").path
    static let pipelines = CLI.repository.appendingPathComponent("Tests/ChiselModelStagesTests/Fixtures/pipelines").path

    static func compare(_ output: String, _ fixture: String) throws -> (max: Float, mean: Float) {
        try pixelDifference(output, fixture: "\(fixtures)/\(fixture)")
    }

    static func edit(_ command: String, _ extra: [String]) -> [String] {
        [command, "--model", references + "/sd1-tiny", "--image", pipelines + "/image.png", "--prompt", "a red fox sitting in a snowy forest, highly detailed",
         "--negative-prompt", "blurry, low quality", "--steps", "8", "--progress", "none"] + extra
    }

    @Test func img2imgWithTwoControlNetsGivesDiffusersPixels() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("multi.png")
        let result = try CLI.run([
            "img2img", "--model", Self.references + "/sd1-tiny", "--image", Self.pipelines + "/image.png",
            "--prompt", "an old stone lighthouse on a cliff at sunset", "--negative-prompt", "blurry, low quality", "--steps", "8",
            "--strength", "0.6", "--scheduler", "euler", "--seed", "7205", "--output", out, "--progress", "none",
            "--controlnet", Self.references + "/sd1-controlnet-tiny:0.7", "--control-image", Self.fixtures + "/control.png",
            "--controlnet", Self.references + "/sd1-controlnet-tiny-b:0.4", "--control-image", Self.fixtures + "/control-b.png",
            "--control-start", "0", "--control-start", "0.3", "--control-end", "0.6", "--control-end", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "img2img_euler_s060_multi.safetensors")
        #expect(difference.max <= 2.5 && difference.mean <= 0.75, "max \(difference.max)/255, mean \(difference.mean)/255")
        let infotext = try ImageReader.read(path: out).text.first { $0.key == "parameters" }?.value ?? ""
        #expect(infotext.contains("ControlNet 0: \"Module: none, Model: sd1-controlnet-tiny, Weight: 0.7, Resize Mode: Just Resize, "
                                  + "Guidance Start: 0.0, Guidance End: 0.6, Control Mode: Balanced\""), "\(infotext)")
        #expect(infotext.contains("ControlNet 1: \"Module: none, Model: sd1-controlnet-tiny-b, Weight: 0.4"), "\(infotext)")
    }

    /// In BF16 (checkpoint and ControlNet), within the bound BF16 img2img keeps against
    /// diffusers' FP32 pipeline (docs/models.md: max 8/255, mean 1/255), plus the PNG's half level.
    @Test func bf16StaysWithinItsBound() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("bf16.png")
        let result = try CLI.run(Self.edit("img2img", [
            "--strength", "0.6", "--scheduler", "euler", "--seed", "7201", "--dtype", "bf16", "--output", out,
            "--controlnet", Self.references + "/sd1-controlnet-tiny", "--control-image", Self.fixtures + "/control.png"]))
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "img2img_euler_s060.safetensors")
        #expect(difference.max <= 8.5 && difference.mean <= 1.5, "max \(difference.max)/255, mean \(difference.mean)/255")
    }

    /// With --only-masked, the control map is cropped and sized as the input is, and the
    /// preprocessors work on the crop; the pixels outside the mask stay the input's.
    @Test func theControlImageFollowsTheOnlyMaskedCrop() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("crop.png")
        let arguments = Self.edit("inpaint", [
            "--mask", Self.pipelines + "/mask.png", "--only-masked", "--only-masked-padding", "4", "--width", "32", "--height", "32",
            "--steps", "3", "--output", out,
            "--controlnet", Self.references + "/sd1-controlnet-tiny", "--control-image", Self.fixtures + "/control.png",
            "--controlnet", Self.references + "/sd1-controlnet-tiny-b", "--control", "canny"])
        let printed = try CLI.run(arguments + ["--print-graph"])
        let compact = String(printed.stdout.filter { !$0.isWhitespace })
        #expect(compact.contains("\"control_area_0\":{\"stage\":\"crop\"") && compact.contains("\"control_work_0\":{\"stage\":\"resize\"")
                && compact.contains("\"canny_1\":{\"stage\":\"canny\",\"inputs\":{\"image\":\"work.image\"}"), "\(printed.stdout)")
        let result = try CLI.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let input = try ImageReader.read(path: Self.pipelines + "/image.png").image.converted(to: .rgb)
        let edited = try ImageReader.read(path: out).image.converted(to: .rgb)
        let mask = try ImageReader.read(path: Self.pipelines + "/mask.png").image.converted(to: .gray)
        var changedOutside = 0
        for i in 0..<(input.width * input.height) where mask.pixels[i] == 0 {
            if (0..<3).contains(where: { input.pixels[$0 * input.width * input.height + i] != edited.pixels[$0 * input.width * input.height + i] }) {
                changedOutside += 1
            }
        }
        #expect(edited.width == input.width && changedOutside == 0, "\(changedOutside) pixels outside the mask changed")
    }

    @Test func inpaintWithTheInpaintConditionGivesDiffusersPixels() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("inpaint.png")
        let result = try CLI.run(Self.edit("inpaint", [
            "--mask", Self.pipelines + "/mask.png", "--strength", "0.75", "--scheduler", "euler", "--seed", "7207", "--paste-back", "false",
            "--controlnet", Self.references + "/sd1-controlnet-tiny", "--control", "inpaint", "--output", out]))
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "inpaint4_euler_s075.safetensors")
        #expect(difference.max <= 2.5 && difference.mean <= 0.75, "max \(difference.max)/255, mean \(difference.mean)/255")
        let infotext = try ImageReader.read(path: out).text.first { $0.key == "parameters" }?.value ?? ""
        #expect(infotext.contains("ControlNet 0: \"Module: inpaint_only, Model: sd1-controlnet-tiny, Weight: 1.0"), "\(infotext)")
    }

    @Test func thePrintedGraphShowsTheControlStages() throws {
        let result = try CLI.run(Self.edit("img2img", [
            "--controlnet", Self.references + "/sd1-controlnet-tiny:0.8", "--control", "canny", "--canny-low", "50",
            "--controlnet", Self.references + "/sd1-controlnet-tiny-b", "--control", "tile", "--guess-mode",
            "--output", "x.png", "--print-graph"]))
        #expect(result.status == 0, "\(result.stderr)")
        for needle in ["\"stage\":\"canny\"", "\"low\":50.0", "\"stage\":\"control_tile\"", "\"stage\":\"controlnet\"", "\"kind\":\"controlnet\"",
                       "\"module\":\"canny\"", "\"module\":\"tile_resample\"", "\"guess_mode\":true", "\"scale\":0.8"] {
            #expect(String(result.stdout.filter { !$0.isWhitespace }).contains(needle), "\(needle) in \(result.stdout)")
        }
        let temp = try TemporaryFolder()
        let graph = temp.path("graph.json")
        try result.stdout.write(toFile: graph, atomically: true, encoding: .utf8)
        let validated = try CLI.run(["validate", graph])
        #expect(validated.status == 0, "\(validated.stderr)")
    }

    @Test func cannyAndTileEditsRun() throws {
        let temp = try TemporaryFolder()
        for source in ["canny", "tile"] {
            let out = temp.path("\(source).png")
            let result = try CLI.run(Self.edit("img2img", ["--controlnet", Self.references + "/sd1-controlnet-tiny", "--control", source,
                                                          "--steps", "2", "--output", out]))
            #expect(result.status == 0, "\(source): \(result.stderr)")
            let infotext = try ImageReader.read(path: out).text.first { $0.key == "parameters" }?.value ?? ""
            #expect(infotext.contains("Module: \(source == "canny" ? "canny" : "tile_resample")"), "\(infotext)")
            // ComfyUI's core has no Canny or tile preprocessor: no `prompt` rather than a wrong one.
            #expect(try ImageReader.read(path: out).text.first { $0.key == "prompt" } == nil)
        }
    }

    @Test func strangersArgumentsGetClearErrors() throws {
        let cn = Self.references + "/sd1-controlnet-tiny"
        let cases: [([String], String)] = [
            (["--controlnet", Self.references + "/sdxl-controlnet-tiny", "--control", "canny"],
             "--controlnet \(Self.references)/sdxl-controlnet-tiny: the ControlNet is for"),
            (["--controlnet", cn, "--controlnet", cn, "--control", "canny"], "--control-image: 1 given for 2 --controlnet and 0 --adapter"),
            (["--controlnet", cn + ":abc", "--control", "canny"], "the scale 'abc' is not a number"),
            (["--controlnet", cn + ":-1", "--control", "canny"], "out of range"),
            (["--controlnet", cn, "--control", "inpaint"], "--control inpaint makes the inpaint ControlNet's condition from the mask"),
            (["--controlnet", cn, "--control", "nowhere.png"], "--control-image nowhere.png: no such file"),
            (["--control", "canny"], "--control-image needs a --controlnet or --adapter"),
            (["--controlnet", cn, "--control", "canny", "--control-start", "0.8", "--control-end", "0.2"], "must be before --control-end"),
            (["--controlnet", Self.references + "/sd1-tiny", "--control", "canny"], "--controlnet \(Self.references)/sd1-tiny:"),
        ]
        for (extra, message) in cases {
            let result = try CLI.run(Self.edit("img2img", extra + ["--output", "never.png"]))
            #expect(result.status != 0 && result.stderr.contains(message), "\(extra): \(result.stderr)")
        }
        let asModel = try CLI.run(["img2img", "--model", cn, "--image", Self.pipelines + "/image.png", "--output", "never.png"])
        #expect(asModel.status != 0 && asModel.stderr.contains("--model names a ControlNet"), "\(asModel.stderr)")
    }

    /// A graph whose ControlNet is of another family than the checkpoint fails validation at the
    /// denoise node, naming the controlnet node.
    @Test func validationNamesAMismatchedControlNetNode() throws {
        let printed = try CLI.run(Self.edit("img2img", ["--controlnet", Self.references + "/sd1-controlnet-tiny:0.7", "--control", "canny",
                                                        "--output", "x.png", "--print-graph"]))
        #expect(printed.status == 0, "\(printed.stderr)")
        let swapped = printed.stdout.replacingOccurrences(of: Self.references + "/sd1-controlnet-tiny", with: Self.references + "/sdxl-controlnet-tiny")
        let temp = try TemporaryFolder()
        let graph = temp.path("graph.json")
        try swapped.write(toFile: graph, atomically: true, encoding: .utf8)
        let validated = try CLI.run(["validate", graph])
        #expect(validated.status != 0 && validated.stderr.contains("node 'controlnet_0': the ControlNet is for"), "\(validated.stderr)")
        // A scale that is not a number names the node and parameter.
        let wordy = printed.stdout.replacingOccurrences(of: "\"scale\":0.7", with: "\"scale\":\"strong\"")
        try wordy.write(toFile: graph, atomically: true, encoding: .utf8)
        let refused = try CLI.run(["validate", graph])
        #expect(refused.status != 0 && refused.stderr.contains("node 'controlnet_0' (nodes.controlnet_0.params.scale): parameter 'scale' expects a number"),
                "\(refused.stderr)")
    }

    /// `chisel img2img --adapter`: diffusers' img2img pipeline with the adapter's features in its UNet.
    @Test func img2imgWithAnAdapterGivesDiffusersPixels() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("adapter.png")
        let result = try CLI.run(Self.edit("img2img", [
            "--strength", "0.7", "--scheduler", "euler", "--seed", "7305", "--output", out,
            "--adapter", Self.references + "/sd1-adapter-tiny:0.9", "--control-image", Self.fixtures + "/control.png"]))
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "adapter_img2img_euler_s070.safetensors")
        #expect(difference.max <= 2.5 && difference.mean <= 0.75, "max \(difference.max)/255, mean \(difference.mean)/255")
    }

    /// `--adapter` with a ControlNet: the two chains meet in one denoise; the adapter's image
    /// follows the ControlNet's in --control-image.
    @Test func adapterAndControlNetTogether() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("both.png")
        let result = try CLI.run(Self.edit("img2img", [
            "--controlnet", Self.references + "/sd1-controlnet-tiny:0.6", "--adapter", Self.references + "/sd1-adapter-tiny:0.9",
            "--control", "canny", "--control-image", Self.fixtures + "/control.png", "--steps", "3", "--output", out]))
        #expect(result.status == 0, "\(result.stderr)")
        let infotext = try ImageReader.read(path: out).text.first { $0.key == "parameters" }?.value ?? ""
        #expect(infotext.contains("ControlNet 0: \"Module: canny, Model: sd1-controlnet-tiny, Weight: 0.6")
                && infotext.contains("ControlNet 1: \"Module: none, Model: sd1-adapter-tiny, Weight: 0.9"), "\(infotext)")
        let wrong = try CLI.run(Self.edit("img2img", ["--adapter", Self.references + "/sdxl-adapter-tiny", "--control", "canny",
                                                      "--output", "never.png"]))
        #expect(wrong.status != 0 && wrong.stderr.contains("--adapter \(Self.references)/sdxl-adapter-tiny: the T2I-Adapter"),
                "\(wrong.stderr)")
        let inspected = try CLI.run(["model", "inspect", Self.references + "/sd1-adapter-light-tiny"])
        #expect(inspected.status == 0 && inspected.stdout.contains("light_adapter") && inspected.stdout.contains("1 channel (grey)"),
                "\(inspected.stdout)")
    }

    /// lllyasviel's single-file layout gives the folder's pixels from the command line.
    @Test func aSingleFileControlNetGivesDiffusersPixels() throws {
        let temp = try TemporaryFolder()
        let out = temp.path("single.png")
        let result = try CLI.run(Self.edit("img2img", [
            "--strength", "0.6", "--scheduler", "euler", "--seed", "7201", "--output", out,
            "--controlnet", Self.references + "/sd1-controlnet-tiny.safetensors", "--control-image", Self.fixtures + "/control.png",
            "--controlnet-hint", "norm_num_groups=8"]))
        #expect(result.status == 0, "\(result.stderr)")
        let difference = try Self.compare(out, "img2img_euler_s060.safetensors")
        #expect(difference.max <= 2.5 && difference.mean <= 0.75, "max \(difference.max)/255, mean \(difference.mean)/255")
        let inspected = try CLI.run(["model", "inspect", Self.references + "/sd1-controlnet-tiny-v11.safetensors", "--hint", "norm_num_groups=8"])
        #expect(inspected.status == 0 && inspected.stdout.contains("single file") && inspected.stdout.contains("assumed:")
                && inspected.stdout.contains("blocks:            [16, 24]"), "\(inspected.stdout)\(inspected.stderr)")
    }

    @Test func inspectDescribesAControlNet() throws {
        let result = try CLI.run(["model", "inspect", Self.references + "/sdxl-controlnet-tiny"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("family:            Stable Diffusion XL") && result.stdout.contains("control image:     3 channels (RGB), 2× the latent's size"),
                "\(result.stdout)")
    }
}
