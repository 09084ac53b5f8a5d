import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation
import Testing

@Suite struct LoadImageStageTests {
    /// A 3×2 image whose samples are all distinct multiples of 1/255, so a PNG stores them exactly.
    static func source(_ layout: PixelLayout) throws -> Image {
        try patternImage(3, 2, layout) { c, x, y in Float(20 + 60 * c + 9 * y + 3 * x) / 255 }
    }

    /// Writes `source(layout)` as a PNG and loads it with `mode`.
    func load(_ layout: PixelLayout, mode: LoadImageStage.Mode,
              files: FileLedger = FileLedger()) async throws -> (Image, Image) {
        let folder = try TempFolder()
        let path = folder.file("in.png")
        let original = try Self.source(layout)
        try writePNG(original, to: path)
        let outputs = try await runStage(LoadImageStage.self,
                                         params: [LoadImageStage.path(path), LoadImageStage.mode(mode)],
                                         files: files)
        return (original, try outputImage(outputs))
    }

    @Test(arguments: PixelLayout.allCases)
    func keepModeReadsTheFileAsItIs(layout: PixelLayout) async throws {
        let (original, loaded) = try await load(layout, mode: .keep)
        #expect(loaded.layout == layout)
        #expect(loaded.width == 3 && loaded.height == 2)
        #expect(loaded.bitDepth == 8)
        #expect(bits(loaded.pixels) == bits(original.pixels))
    }

    @Test func recordsTheOriginAndNotesTheFileAsInput() async throws {
        let folder = try TempFolder()
        let path = folder.file("photo.png")
        try writePNG(try Self.source(.rgb), to: path)
        let files = FileLedger()
        #expect(!files.isInput(path))
        let loaded = try outputImage(await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)], files: files))
        #expect(files.isInput(path))
        #expect(files.isInput(folder.path + "/./photo.png"))
        #expect(!files.isInput(folder.file("other.png")))
        #expect(loaded.origin?.path == path)
        #expect(loaded.origin?.stem == "photo")
    }

    @Test(arguments: PixelLayout.allCases)
    func rgbModeDropsAlphaAndRepeatsGray(layout: PixelLayout) async throws {
        let (original, loaded) = try await load(layout, mode: .rgb)
        #expect(loaded.layout == .rgb)
        for c in 0..<3 {
            let expected = layout.colorChannels == 1 ? original.plane(0) : original.plane(c)
            #expect(bits(loaded.plane(c)) == bits(expected), "channel \(c)")
        }
    }

    @Test(arguments: PixelLayout.allCases)
    func rgbaModeKeepsOrAddsOpaqueAlpha(layout: PixelLayout) async throws {
        let (original, loaded) = try await load(layout, mode: .rgba)
        #expect(loaded.layout == .rgba)
        for c in 0..<3 {
            let expected = layout.colorChannels == 1 ? original.plane(0) : original.plane(c)
            #expect(bits(loaded.plane(c)) == bits(expected), "channel \(c)")
        }
        let alpha = layout.hasAlpha ? original.plane(layout.channels - 1) : [Float](repeating: 1, count: 6)
        #expect(bits(loaded.plane(3)) == bits(alpha))
    }

    @Test(arguments: PixelLayout.allCases)
    func grayModeUsesRec601Luma(layout: PixelLayout) async throws {
        let (original, loaded) = try await load(layout, mode: .gray)
        #expect(loaded.layout == .gray)
        let expected: [Float]
        if layout.colorChannels == 1 {
            expected = original.plane(0)
        } else {
            let (r, g, b) = (original.plane(0), original.plane(1), original.plane(2))
            expected = (0..<6).map { i in 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i] }
        }
        #expect(maxDifference(loaded.plane(0), expected) <= 1e-6)
        if layout.colorChannels == 1 { #expect(bits(loaded.pixels) == bits(expected)) }
    }

    @Test func pureColoursBecomeTheirLumaWeights() async throws {
        let folder = try TempFolder()
        let path = folder.file("rgb.png")
        // Red, green, blue, white.
        try writePNG(try makeImage(4, 1, .rgb, planes: [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1]]), to: path)
        let loaded = try outputImage(await runStage(LoadImageStage.self,
                                                    params: [LoadImageStage.path(path), LoadImageStage.mode(.gray)]))
        #expect(maxDifference(loaded.pixels, [0.299, 0.587, 0.114, 1]) <= 1e-6)
    }

    @Test func keeps16BitSamples() async throws {
        let folder = try TempFolder()
        let path = folder.file("deep.png")
        let levels: [UInt16] = [0, 1, 257, 12345, 40000, 65534, 65535, 32768]
        let original = try Image(width: 4, height: 2, layout: .gray, pixels: levels.map { Float($0) / 65535 }, bitDepth: 16)
        try writePNG(original, to: path)
        let loaded = try outputImage(await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)]))
        #expect(loaded.bitDepth == 16)
        #expect(loaded.pixels.map { UInt16(($0 * 65535).rounded()) } == levels)
    }

    @Test func missingFileIsAnErrorNamingIt() async throws {
        let folder = try TempFolder()
        let path = folder.file("nowhere.png")
        let error = await expectChiselError(.io) {
            try await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)])
        }
        #expect(error?.file == path)
        #expect(error?.description.contains("nowhere.png") == true)
    }

    @Test(arguments: [
        ("truncated.png", Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44])),
        ("garbage.png", Data("this is not an image at all".utf8)),
        ("empty.jpg", Data()),
        ("cut.jpg", Data([0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10])),
    ])
    func corruptFileIsAnErrorNamingIt(name: String, bytes: Data) async throws {
        let folder = try TempFolder()
        let path = folder.file(name)
        try bytes.write(to: URL(fileURLWithPath: path))
        let error = await expectChiselError {
            try await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)])
        }
        #expect(error?.file == path)
        #expect(error?.description.contains(name) == true)
        #expect([.invalidImage, .unsupportedFormat].contains(error?.code))
    }

    @Test func truncatedPNGOfARealImageIsAnError() async throws {
        let folder = try TempFolder()
        let whole = folder.file("whole.png"), cut = folder.file("cut.png")
        try writePNG(try patternImage(16, 16, .rgb), to: whole)
        let data = try fileBytes(whole)
        try data.prefix(data.count - 30).write(to: URL(fileURLWithPath: cut))
        let error = await expectChiselError(.invalidImage) {
            try await runStage(LoadImageStage.self, params: [LoadImageStage.path(cut)])
        }
        #expect(error?.file == cut)
    }

    @Test func imageAboveThePixelLimitIsRefused() async throws {
        let folder = try TempFolder()
        let path = folder.file("big.png")
        try writePNG(try Image(width: 10, height: 10, layout: .gray, filledWith: 0.5), to: path)
        let error = await expectChiselError(.imageTooLarge) {
            try await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)], run: RunInfo(maxPixels: 99))
        }
        #expect(error?.file == path)
        // Exactly at the limit is fine.
        let loaded = try outputImage(await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)],
                                              run: RunInfo(maxPixels: 100)))
        #expect(loaded.width == 10)
    }

    @Test func readsJPEG() async throws {
        let folder = try TempFolder()
        let path = folder.file("photo.jpg")
        let original = try makeImage(8, 8, .rgb, planes: [
            [Float](repeating: 0.8, count: 64), [Float](repeating: 0.4, count: 64), [Float](repeating: 0.2, count: 64),
        ])
        try ImageWriter.write(original, to: path, options: ImageEncodeOptions(format: .jpeg, jpegQuality: 95))
        let loaded = try outputImage(await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)]))
        #expect(loaded.layout == .rgb)
        #expect(maxDifference(loaded.pixels, original.pixels) <= 3.0 / 255)
    }
}
