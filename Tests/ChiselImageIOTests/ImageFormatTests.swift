import Testing

@testable import ChiselImageIO

@Suite("Image formats")
struct ImageFormatTests {
    @Test("extensions")
    func extensions() {
        #expect(ImageFormat(pathExtension: "png") == .png)
        #expect(ImageFormat(pathExtension: "PNG") == .png)
        for ext in ["jpg", "JPG", "jpeg", "Jpeg", "jpe"] { #expect(ImageFormat(pathExtension: ext) == .jpeg) }
        for ext in ["gif", "", "pn", "jpgx", "webp"] { #expect(ImageFormat(pathExtension: ext) == nil) }
        #expect(ImageFormat(path: "/a/b.c/photo.JPEG") == .jpeg)
        #expect(ImageFormat(path: "out/x.png") == .png)
        #expect(ImageFormat(path: "out.png/x") == nil)
        #expect(ImageFormat(path: ".png") == nil)
        #expect(ImageFormat.png.preferredExtension == "png")
        #expect(ImageFormat.jpeg.preferredExtension == "jpg")
    }

    @Test("magic numbers")
    func sniffing() throws {
        #expect(ImageFormat.sniff(try Fixtures.data("rgb8.png")) == .png)
        #expect(ImageFormat.sniff(try Fixtures.data("baseline.jpg")) == .jpeg)
        #expect(ImageFormat.sniff([UInt8]()) == nil)
        #expect(ImageFormat.sniff([0x89, 0x50, 0x4E, 0x47]) == nil)
        #expect(ImageFormat.sniff([0xFF, 0xD8]) == nil)
        #expect(ImageFormat.sniff(Array("GIF89a....".utf8)) == nil)
        #expect(ImageFormat.sniff([0xFF, 0xD8, 0xFF, 0xE0][...]) == .jpeg)
    }
}
