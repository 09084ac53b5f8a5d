import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation
import Testing

/// The two stages that turn an image into a mask: load_mask reads a file, image_to_mask takes an
/// image on a wire. Both share `MaskSource`, so most tests run against both.
enum MaskMaker: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case loadMask = "load_mask"
    case imageToMask = "image_to_mask"

    var testDescription: String { rawValue }

    /// The mask made from `image` (written as an 8-bit PNG for load_mask, so use multiples of 1/255).
    func mask(from image: Image, _ params: [ParamSetting] = [],
              sourceLocation: SourceLocation = #_sourceLocation) async throws -> Mask {
        switch self {
        case .imageToMask:
            return try outputMask(await runStage(ImageToMaskStage.self, params: params,
                                                             inputs: [ImageToMaskStage.image(image)],
                                                             sourceLocation: sourceLocation))
        case .loadMask:
            let folder = try TempFolder()
            let path = folder.file("mask.png")
            try writePNG(image, to: path)
            let files = FileLedger()
            let result = try outputMask(await runStage(LoadMaskStage.self, params: params + [LoadMaskStage.path(path)],
                                                       files: files,
                                                                   sourceLocation: sourceLocation))
            #expect(files.isInput(path), sourceLocation: sourceLocation)
            #expect(result.origin?.path == path, sourceLocation: sourceLocation)
            return result
        }
    }
}

@Suite struct MaskSourceStageTests {
    static let red: [Float] = [0, 51, 102, 153, 204, 255].map { Float($0) / 255 }
    static let green: [Float] = [255, 0, 34, 68, 170, 255].map { Float($0) / 255 }
    static let blue: [Float] = [17, 85, 0, 255, 119, 255].map { Float($0) / 255 }
    static let alpha: [Float] = [255, 0, 128, 127, 64, 255].map { Float($0) / 255 }

    static func luma(_ i: Int) -> Float { 0.299 * red[i] + 0.587 * green[i] + 0.114 * blue[i] }

    static var rgb: Image { get throws { try makeImage(3, 2, .rgb, planes: [red, green, blue]) } }
    static var rgba: Image { get throws { try makeImage(3, 2, .rgba, planes: [red, green, blue, alpha]) } }
    static var gray: Image { get throws { try makeImage(3, 2, .gray, planes: [red]) } }
    static var grayAlpha: Image { get throws { try makeImage(3, 2, .grayAlpha, planes: [red, alpha]) } }

    @Test(arguments: MaskMaker.allCases)
    func luminanceOfGrayIsTheGrayValue(maker: MaskMaker) async throws {
        for source: MaskSource in [.luminance, .auto] {
            let mask = try await maker.mask(from: Self.gray, [MaskSource.source(source)])
            #expect(mask.width == 3 && mask.height == 2)
            #expect(bits(mask.values) == bits(Self.red), "source \(source)")
        }
    }

    @Test(arguments: MaskMaker.allCases)
    func luminanceOfRGBUsesRec601Weights(maker: MaskMaker) async throws {
        for source: MaskSource in [.luminance, .auto] {
            let mask = try await maker.mask(from: Self.rgb, [MaskSource.source(source)])
            #expect(maxDifference(mask.values, (0..<6).map(Self.luma)) <= 1e-6, "source \(source)")
        }
        // Pure primaries give the weights themselves.
        let primaries = try makeImage(3, 1, .rgb, planes: [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
        let mask = try await maker.mask(from: primaries, [MaskSource.source(.luminance)])
        #expect(maxDifference(mask.values, [0.299, 0.587, 0.114]) <= 1e-6)
    }

    @Test(arguments: MaskMaker.allCases)
    func alphaGivesOneMinusAlpha(maker: MaskMaker) async throws {
        for image in [try Self.rgba, try Self.grayAlpha] {
            let mask = try await maker.mask(from: image, [MaskSource.source(.alpha)])
            #expect(bits(mask.values) == bits(Self.alpha.map { 1 - $0 }), "\(image.layout)")
            #expect(mask.values[0] == 0 && mask.values[1] == 1)
        }
    }

    @Test(arguments: MaskMaker.allCases)
    func autoPicksAlphaOnlyWhenItIsNotFullyOpaque(maker: MaskMaker) async throws {
        // Not opaque: alpha.
        let fromAlpha = try await maker.mask(from: Self.rgba, [MaskSource.source(.auto)])
        #expect(bits(fromAlpha.values) == bits(Self.alpha.map { 1 - $0 }))
        // One pixel just below opaque is enough.
        var nearlyOpaque = [Float](repeating: 1, count: 6)
        nearlyOpaque[4] = 254.0 / 255
        let one = try makeImage(3, 2, .rgba, planes: [Self.red, Self.green, Self.blue, nearlyOpaque])
        let fromOne = try await maker.mask(from: one, [MaskSource.source(.auto)])
        #expect(bits(fromOne.values) == bits(nearlyOpaque.map { 1 - $0 }))
        // Fully opaque: luminance, as if there were no alpha.
        let opaque = try makeImage(3, 2, .rgba, planes: [Self.red, Self.green, Self.blue, [Float](repeating: 1, count: 6)])
        let fromLuma = try await maker.mask(from: opaque, [MaskSource.source(.auto)])
        #expect(maxDifference(fromLuma.values, (0..<6).map(Self.luma)) <= 1e-6)
        let grayOpaque = try makeImage(3, 2, .grayAlpha, planes: [Self.red, [Float](repeating: 1, count: 6)])
        let fromGray = try await maker.mask(from: grayOpaque, [MaskSource.source(.auto)])
        #expect(bits(fromGray.values) == bits(Self.red))
    }

    @Test(arguments: MaskMaker.allCases)
    func colourChannels(maker: MaskMaker) async throws {
        for (source, plane) in [(MaskSource.red, Self.red), (.green, Self.green), (.blue, Self.blue)] {
            for image in [try Self.rgb, try Self.rgba] {
                let mask = try await maker.mask(from: image, [MaskSource.source(source)])
                #expect(bits(mask.values) == bits(plane), "\(source) of \(image.layout)")
            }
        }
    }

    @Test(arguments: MaskMaker.allCases)
    func thresholdSetsValuesAtOrAboveToOne(maker: MaskMaker) async throws {
        // The threshold equals one of the samples exactly: that sample becomes 1.
        let t = Double(Float(102) / 255)
        let mask = try await maker.mask(from: Self.gray, [MaskSource.source(.luminance), MaskSource.threshold(t)])
        #expect(mask.values == [0, 0, 1, 1, 1, 1])
        let zero = try await maker.mask(from: Self.gray, [MaskSource.threshold(0)])
        #expect(zero.values == [1, 1, 1, 1, 1, 1])
        let one = try await maker.mask(from: Self.gray, [MaskSource.threshold(1)])
        #expect(one.values == [0, 0, 0, 0, 0, 1])
    }

    @Test(arguments: MaskMaker.allCases)
    func invertAppliesAfterThreshold(maker: MaskMaker) async throws {
        let soft = try await maker.mask(from: Self.gray, [MaskSource.invert(true)])
        #expect(bits(soft.values) == bits(Self.red.map { 1 - $0 }))
        let hard = try await maker.mask(from: Self.gray,
                                        [MaskSource.invert(true), MaskSource.threshold(Double(Float(102) / 255))])
        #expect(hard.values == [1, 1, 0, 0, 0, 0])
        let alpha = try await maker.mask(from: Self.rgba, [MaskSource.source(.alpha), MaskSource.invert(true)])
        #expect(bits(alpha.values) == bits(Self.alpha.map { 1 - (1 - $0) }))
    }

    @Test(arguments: MaskMaker.allCases)
    func alphaOfAnImageWithoutAlphaIsAnError(maker: MaskMaker) async throws {
        for image in [try Self.rgb, try Self.gray] {
            await expectChiselError(.invalidParameter) {
                _ = try await maker.mask(from: image, [MaskSource.source(.alpha)])
            }
        }
    }

    /// A gray image's colour channels are its gray, as converting it to RGB makes them (ComfyUI's
    /// LoadImageMask reads a gray mask's red channel).
    @Test(arguments: MaskMaker.allCases)
    func colourChannelOfAGrayImageIsItsGray(maker: MaskMaker) async throws {
        for image in [try Self.gray, try Self.grayAlpha] {
            for channel in [MaskSource.red, .green, .blue] {
                let mask = try await maker.mask(from: image, [MaskSource.source(channel)])
                #expect(mask.values == Array(image.pixels[image.planeRange(0)]))
            }
        }
    }

    @Test func loadMaskErrorsNameTheFile() async throws {
        let folder = try TempFolder()
        let path = folder.file("opaque.png")
        try writePNG(try Self.rgb, to: path)
        let error = await expectChiselError(.invalidParameter) {
            try await runStage(LoadMaskStage.self, params: [LoadMaskStage.path(path), MaskSource.source(.alpha)])
        }
        #expect(error?.file == path)
        let missing = folder.file("missing.png")
        let io = await expectChiselError(.io) {
            try await runStage(LoadMaskStage.self, params: [LoadMaskStage.path(missing)])
        }
        #expect(io?.file == missing)
    }

    @Test func loadMaskKeeps16BitPrecision() async throws {
        let folder = try TempFolder()
        let path = folder.file("deep.png")
        let levels: [UInt16] = [0, 1, 30000, 65535]
        try writePNG(try Image(width: 2, height: 2, layout: .gray, pixels: levels.map { Float($0) / 65535 }, bitDepth: 16),
                     to: path)
        let mask = try outputMask(await runStage(LoadMaskStage.self, params: [LoadMaskStage.path(path)]))
        #expect(mask.values.map { UInt16(($0 * 65535).rounded()) } == levels)
    }

    @Test func imageToMaskKeepsTheOrigin() async throws {
        var image = try Self.gray
        image.origin = ImageOrigin(path: "/photos/cat.png")
        let mask = try outputMask(await runStage(ImageToMaskStage.self, inputs: [ImageToMaskStage.image(image)]))
        #expect(mask.origin == image.origin)
    }
}

@Suite struct MaskToImageStageTests {
    @Test func givesAGrayImageWithTheMaskValues() async throws {
        let values: [Float] = [0, 0.25, 0.5, 1, 0.125, 0.75]
        var mask = try Mask(width: 3, height: 2, values: values)
        mask.origin = ImageOrigin(path: "/m/edit.png")
        let image = try outputImage(await runStage(MaskToImageStage.self, inputs: [MaskToImageStage.mask(mask)]))
        #expect(image.layout == .gray)
        #expect(image.width == 3 && image.height == 2)
        #expect(bits(image.pixels) == bits(values))
        #expect(image.origin == mask.origin)
    }

    @Test func clampsToTheUnitRange() async throws {
        let mask = try Mask(width: 4, height: 1, values: [-0.5, 1.5, 0.3, 1])
        let image = try outputImage(await runStage(MaskToImageStage.self, inputs: [MaskToImageStage.mask(mask)]))
        #expect(image.pixels == [0, 1, 0.3, 1])
    }

    @Test func roundTripsThroughImageToMask() async throws {
        let mask = try makeMask(5, 4) { x, y in Float(x * 4 + y) / 19 }
        let image = try outputImage(await runStage(MaskToImageStage.self, inputs: [MaskToImageStage.mask(mask)]))
        for source: MaskSource in [.auto, .luminance] {
            let back = try outputMask(await runStage(ImageToMaskStage.self, params: [MaskSource.source(source)],
                                                                 inputs: [ImageToMaskStage.image(image)]))
            #expect(bits(back.values) == bits(mask.values))
        }
    }
}
