import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation
import Testing

@Suite struct SaveImageStageTests {
    /// A 4×3 image of distinct multiples of 1/255.
    static func source(_ layout: PixelLayout = .rgb) throws -> Image {
        try patternImage(4, 3, layout) { c, x, y in Float(10 + 50 * c + 13 * y + 5 * x) / 255 }
    }

    func save(_ image: Image, to path: String, _ params: [ParamSetting] = [], run: RunInfo = RunInfo(),
              files: FileLedger = FileLedger(), node: String = "save", events: EventLog? = nil) async throws {
        try await runStage(SaveImageStage.self, params: params + [SaveImageStage.path(path)],
                           inputs: [SaveImageStage.image(image)], run: run, files: files, node: node, events: events)
    }

    @Test(arguments: PixelLayout.allCases)
    func pngRoundTripIsExact(layout: PixelLayout) async throws {
        let folder = try TempFolder()
        let path = folder.file("out.png")
        let original = try Self.source(layout)
        let events = EventLog()
        try await save(original, to: path, events: events)
        let decoded = try ImageReader.read(path: path)
        #expect(decoded.format == .png)
        #expect(decoded.image.layout == layout)
        #expect(decoded.image.bitDepth == 8)
        #expect(bits(decoded.image.pixels) == bits(original.pixels))
        #expect(events.written == [path])
        #expect(try folder.contents() == ["out.png"])
    }

    @Test func sixteenBitSourceStaysSixteenBitWithAutoDepth() async throws {
        let folder = try TempFolder()
        let path = folder.file("deep.png")
        let levels: [UInt16] = [0, 1, 2, 255, 256, 257, 4097, 12345, 32767, 32768, 54321, 65533, 65534, 65535, 7, 40000,
                                100, 1000, 10000, 60000, 3, 33333, 44444, 55555]
        let original = try Image(width: 4, height: 2, layout: .rgb, pixels: levels.map { Float($0) / 65535 }, bitDepth: 16)
        try await save(original, to: path, [SaveImageStage.bitDepth(.auto)])
        let decoded = try ImageReader.read(path: path).image
        #expect(decoded.bitDepth == 16)
        #expect(decoded.layout == .rgb)
        #expect(decoded.pixels.map { UInt16(($0 * 65535).rounded()) } == levels)
    }

    @Test func bitDepth8ForcesEightBits() async throws {
        let folder = try TempFolder()
        let path = folder.file("shallow.png")
        let levels: [UInt16] = [0, 1, 257, 12345, 32768, 65535]
        let original = try Image(width: 3, height: 2, layout: .gray, pixels: levels.map { Float($0) / 65535 }, bitDepth: 16)
        try await save(original, to: path, [SaveImageStage.bitDepth(.eight)])
        let decoded = try ImageReader.read(path: path).image
        #expect(decoded.bitDepth == 8)
        #expect(decoded.pixels.map { UInt8(($0 * 255).rounded()) }
            == levels.map { UInt8((Double($0) / 65535 * 255).rounded()) })
    }

    @Test func bitDepth16WidensAnEightBitSource() async throws {
        let folder = try TempFolder()
        let path = folder.file("wide.png")
        let original = try Self.source(.rgba)
        try await save(original, to: path, [SaveImageStage.bitDepth(.sixteen)])
        let decoded = try ImageReader.read(path: path).image
        #expect(decoded.bitDepth == 16)
        // k/255 is exactly 257k/65535.
        #expect(decoded.pixels.map { UInt16(($0 * 65535).rounded()) }
            == original.pixels.map { UInt16(($0 * 255).rounded()) * 257 })
    }

    @Test(arguments: ["out.jpg", "out.jpeg", "OUT.JPG", "out.jpe"])
    func jpegByExtension(name: String) async throws {
        let folder = try TempFolder()
        let path = folder.file(name)
        let flat = try makeImage(16, 16, .rgb, planes: [0.8, 0.4, 0.2].map { [Float](repeating: $0, count: 256) })
        try await save(flat, to: path)
        let bytes = try fileBytes(path)
        #expect(Array(bytes.prefix(3)) == [0xFF, 0xD8, 0xFF])
        let decoded = try ImageReader.read(path: path)
        #expect(decoded.format == .jpeg)
        #expect(maxDifference(decoded.image.pixels, flat.pixels) <= 2.0 / 255)
        #expect(try folder.contents() == [name])
    }

    @Test func jpegQualityChangesTheFile() async throws {
        let folder = try TempFolder()
        let busy = try patternImage(64, 64, .rgb) { c, x, y in Float((x * 7 + y * 13 + c * 5) % 17) / 16 }
        try await save(busy, to: folder.file("low.jpg"), [SaveImageStage.quality(10)])
        try await save(busy, to: folder.file("high.jpg"), [SaveImageStage.quality(100)])
        let low = try fileBytes(folder.file("low.jpg")), high = try fileBytes(folder.file("high.jpg"))
        #expect(low.count < high.count)
        let lowError = maxDifference(try ImageReader.read(path: folder.file("low.jpg")).image.pixels, busy.pixels)
        let highError = maxDifference(try ImageReader.read(path: folder.file("high.jpg")).image.pixels, busy.pixels)
        #expect(highError < lowError)
    }

    @Test func sixteenBitSourceAsJPEGWithAutoDepthIsEightBit() async throws {
        let folder = try TempFolder()
        var deep = try Image(width: 8, height: 8, layout: .rgb, filledWith: 0.5)
        deep.bitDepth = 16
        try await save(deep, to: folder.file("deep.jpg"))
        let decoded = try ImageReader.read(path: folder.file("deep.jpg"))
        #expect(decoded.format == .jpeg && decoded.image.bitDepth == 8)
        #expect(maxDifference(decoded.image.pixels, deep.pixels) <= 2.0 / 255)
    }

    @Test func alphaIsDroppedInJPEG() async throws {
        let folder = try TempFolder()
        try await save(try Self.source(.rgba), to: folder.file("a.jpg"))
        try await save(try Self.source(.grayAlpha), to: folder.file("g.jpg"))
        #expect(try ImageReader.read(path: folder.file("a.jpg")).image.layout == .rgb)
        #expect(try ImageReader.read(path: folder.file("g.jpg")).image.layout == .gray)
    }

    @Test func refusesToWriteOverALoadedMask() async throws {
        let folder = try TempFolder()
        let path = folder.file("mask.png")
        try writePNG(try Self.source(.gray), to: path)
        let before = try fileBytes(path)
        let files = FileLedger()
        let mask = try outputMask(await runStage(LoadMaskStage.self, params: [LoadMaskStage.path(path)], files: files))
        let preview = try outputImage(await runStage(MaskToImageStage.self, inputs: [MaskToImageStage.mask(mask)]))
        // mask_to_image keeps the mask's origin, so {stem} names the mask file itself.
        await expectChiselError(.io) { try await save(preview, to: folder.path + "/{stem}.png", files: files) }
        #expect(try fileBytes(path) == before)
    }

    @Test func explicitFormatMatchingTheExtensionWrites() async throws {
        let folder = try TempFolder()
        try await save(try Self.source(), to: folder.file("a.png"), [SaveImageStage.format(.png)])
        try await save(try Self.source(), to: folder.file("b.jpg"), [SaveImageStage.format(.jpeg)])
        #expect(try ImageReader.read(path: folder.file("a.png")).format == .png)
        #expect(try ImageReader.read(path: folder.file("b.jpg")).format == .jpeg)
    }

    @Test func explicitFormatWritesAFileWithAnUnknownExtension() async throws {
        let folder = try TempFolder()
        let path = folder.file("picture.data")
        try await save(try Self.source(), to: path, [SaveImageStage.format(.png)])
        let decoded = try ImageReader.read(path: path)
        #expect(decoded.format == .png)
        #expect(bits(decoded.image.pixels) == bits(try Self.source().pixels))
    }

    @Test(arguments: [(SaveImageStage.Format.png, "out.jpg"), (.png, "out.jpeg"), (.jpeg, "out.png")])
    func formatAndExtensionMismatchIsAnError(format: SaveImageStage.Format, name: String) async throws {
        let folder = try TempFolder()
        let path = folder.file(name)
        let error = await expectChiselError(.invalidParameter) {
            try await save(try Self.source(), to: path, [SaveImageStage.format(format)])
        }
        #expect(error?.file == path)
        #expect(try folder.contents().isEmpty)
    }

    @Test(arguments: ["out.tif", "out.webp", "out", "out.png.bak"])
    func unknownExtensionWithAutoFormatIsAnError(name: String) async throws {
        let folder = try TempFolder()
        let path = folder.file(name)
        let error = await expectChiselError(.invalidParameter) {
            try await save(try Self.source(), to: path, [SaveImageStage.format(.auto)])
        }
        #expect(error?.file == path)
        #expect(try folder.contents().isEmpty)
    }

    /// `chisel validate` reports a format it cannot tell from the path (on the path parameter), or
    /// an explicit format the extension contradicts (on the format parameter), before anything runs.
    @Test func unknownOrMismatchedExtensionIsAValidationProblem() throws {
        let gif = try validationProblems(SaveImageStage.self,
                                         makeCall(SaveImageStage.self, params: [SaveImageStage.path("/out/x.gif")]))
        #expect(gif.map(\.message) == ["cannot tell the format from extension '.gif'; use .png, .jpg or set format"])
        #expect(gif.map(\.param) == ["path"])
        #expect(gif.map(\.input) == [nil])
        #expect(gif.map(\.code) == [.invalidParameter])
        let mismatch = try validationProblems(SaveImageStage.self, makeCall(SaveImageStage.self, params: [
            SaveImageStage.path("/out/x.jpg"), SaveImageStage.format(.png),
        ]))
        #expect(mismatch.map(\.message) == ["format png does not match extension '.jpg'"])
        // An explicit format that contradicts the extension is the format's fault.
        #expect(mismatch.map(\.param) == ["format"])
        for fine in ["/out/x.png", "/out/x.JPG", "{stem}-chisel.png"] {
            let call = makeCall(SaveImageStage.self, params: [SaveImageStage.path(fine)])
            #expect(try validationProblems(SaveImageStage.self, call).isEmpty, "\(fine)")
        }
        // An explicit format writes any extension.
        let data = makeCall(SaveImageStage.self, params: [SaveImageStage.path("/out/x.data"), SaveImageStage.format(.png)])
        #expect(try validationProblems(SaveImageStage.self, data).isEmpty)
    }

    /// An extension written with a template field is known only at run time: validate skips it.
    @Test func templateExtensionIsLeftToRunTime() throws {
        for path in ["{stem}.{x}", "/out/{node}.{stem}"] {
            let call = makeCall(SaveImageStage.self, params: [SaveImageStage.path(path)])
            #expect(try validationProblems(SaveImageStage.self, call).isEmpty, "\(path)")
        }
    }

    @Test func sixteenBitJPEGIsAnError() async throws {
        let folder = try TempFolder()
        await expectChiselError(.invalidParameter) {
            try await save(try Self.source(), to: folder.file("deep.jpg"), [SaveImageStage.bitDepth(.sixteen)])
        }
        #expect(try folder.contents().isEmpty)
    }

    @Test func refusesToWriteOverAnInputFile() async throws {
        let folder = try TempFolder()
        let path = folder.file("in.png")
        try writePNG(try Self.source(), to: path)
        let before = try fileBytes(path)
        let files = FileLedger()
        // Load it the way a graph does: the loader notes it in the ledger.
        let loaded = try outputImage(await runStage(LoadImageStage.self, params: [LoadImageStage.path(path)], files: files))
        let edited = try Self.source(.gray)
        for spelling in [path, folder.path + "/./in.png", folder.path + "/../" + URL(fileURLWithPath: folder.path).lastPathComponent + "/in.png"] {
            for overwrite in [true, false] {
                let error = await expectChiselError(.io) {
                    try await save(edited, to: spelling, [SaveImageStage.overwrite(overwrite)], files: files)
                }
                #expect(error?.description.contains("in.png") == true)
            }
        }
        // Through the {stem} template too: the image's own origin names the input.
        let error = await expectChiselError(.io) {
            try await save(loaded, to: folder.path + "/{stem}.png", files: files)
        }
        #expect(error?.file == path)
        #expect(try fileBytes(path) == before)
        #expect(try folder.contents() == ["in.png"])
    }

    @Test func refusesToWriteOverAnInputThroughASymbolicLink() async throws {
        let folder = try TempFolder()
        let path = folder.file("in.png")
        try writePNG(try Self.source(), to: path)
        let before = try fileBytes(path)
        try FileManager.default.createSymbolicLink(atPath: folder.file("link.png"), withDestinationPath: path)
        let files = FileLedger()
        files.noteInput(path)
        await expectChiselError(.io) {
            try await save(try Self.source(.gray), to: folder.file("link.png"), files: files)
        }
        #expect(try fileBytes(path) == before)
    }

    @Test func overwriteFalseRefusesAnExistingFile() async throws {
        let folder = try TempFolder()
        let path = folder.file("out.png")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: path))
        let error = await expectChiselError(.io) {
            try await save(try Self.source(), to: path, [SaveImageStage.overwrite(false)])
        }
        #expect(error?.file == path)
        #expect(try fileBytes(path) == Data("precious".utf8))
        #expect(try folder.contents() == ["out.png"])
        // overwrite true (the default) replaces it.
        try await save(try Self.source(), to: path)
        #expect(bits(try ImageReader.read(path: path).image.pixels) == bits(try Self.source().pixels))
        // overwrite false writes a file that does not exist yet.
        try await save(try Self.source(), to: folder.file("new.png"), [SaveImageStage.overwrite(false)])
        #expect(try folder.contents() == ["new.png", "out.png"])
    }

    @Test func templatesExpandFromRunInfo() async throws {
        let folder = try TempFolder()
        var image = try Self.source()
        image.origin = ImageOrigin(path: "/elsewhere/origin-name.jpg")
        let run = RunInfo(index: 7, stem: "photo")
        try await save(image, to: folder.path + "/{stem}-{index:03}-{node}.png", run: run, node: "saver")
        #expect(try folder.contents() == ["photo-007-saver.png"])
        try await save(image, to: folder.path + "/{index}_{index:5}.png", run: RunInfo(index: 42), node: "x")
        #expect(try folder.contents().contains("42_00042.png"))
    }

    @Test func stemFallsBackToTheImageOrigin() async throws {
        let folder = try TempFolder()
        var image = try Self.source()
        image.origin = ImageOrigin(path: "/somewhere/holiday.photo.jpg")
        try await save(image, to: folder.path + "/{stem}-{index:03}.png", run: RunInfo(index: 3))
        #expect(try folder.contents() == ["holiday.photo-003.png"])
    }

    @Test func stemWithNeitherRunStemNorOriginIsOutput() async throws {
        let folder = try TempFolder()
        try await save(try Self.source(), to: folder.path + "/{stem}.png")
        #expect(try folder.contents() == ["output.png"])
    }

    @Test func bracesAndBadTemplates() async throws {
        let folder = try TempFolder()
        try await save(try Self.source(), to: folder.path + "/{{x}}.png")
        #expect(try folder.contents() == ["{x}.png"])
        await expectChiselError(.invalidParameter) {
            try await save(try Self.source(), to: folder.path + "/{colour}.png")
        }
    }

    @Test func createsMissingFolders() async throws {
        let folder = try TempFolder()
        let path = folder.path + "/a/b/out.png"
        try await save(try Self.source(), to: path)
        #expect(try ImageReader.read(path: path).image.width == 4)
    }

    @Test func leavesNoTemporaryFiles() async throws {
        let folder = try TempFolder()
        for name in ["a.png", "b.jpg", "a.png"] {
            try await save(try Self.source(.rgba), to: folder.file(name))
        }
        #expect(try folder.contents() == ["a.png", "b.jpg"])
        // A failed write leaves none either.
        await expectChiselError {
            try await save(try Self.source(.rgba), to: folder.file("c.jpg"), [SaveImageStage.bitDepth(.sixteen)])
        }
        #expect(try folder.contents() == ["a.png", "b.jpg"])
    }

    @Test func plannedOutputFilesIsThePathWritten() async throws {
        let folder = try TempFolder()
        let run = RunInfo(index: 12, stem: "cat")
        let template = folder.path + "/{stem}/{node}-{index:04}.png"
        let events = EventLog()
        let call = makeCall(SaveImageStage.self, params: [SaveImageStage.path(template)],
                            inputs: [SaveImageStage.image(try Self.source())], run: run, node: "out", events: events)
        let planned = try SaveImageStage.plannedOutputFiles(call)
        #expect(planned == [folder.path + "/cat/out-0012.png"])
        _ = try await SaveImageStage.run(call)
        #expect(events.written == planned)
        #expect(FileManager.default.fileExists(atPath: planned[0]))
        // Without placeholders the plan is the path itself.
        let plain = makeCall(SaveImageStage.self, params: [SaveImageStage.path(folder.file("x.png"))])
        #expect(try SaveImageStage.plannedOutputFiles(plain) == [folder.file("x.png")])
    }

    @Test func savesWhatLoadImageRead() async throws {
        let folder = try TempFolder()
        let input = folder.file("in.png"), output = folder.file("out.png")
        let original = try Self.source(.grayAlpha)
        try writePNG(original, to: input)
        let files = FileLedger()
        let loaded = try outputImage(await runStage(LoadImageStage.self, params: [LoadImageStage.path(input)], files: files))
        try await save(loaded, to: output, files: files)
        let back = try ImageReader.read(path: output).image
        #expect(back.layout == .grayAlpha)
        #expect(bits(back.pixels) == bits(original.pixels))
    }
}
