import ChiselCore
import ChiselImageIO
import Foundation
import Testing

@Suite struct CLISheetTests {
    @Test func aSheetHoldsEachImageAndItsLabel() throws {
        let temp = try TemporaryFolder()
        // A white and a black image; the second is wider, so it is fitted with bands around it.
        let white = try Image(width: 20, height: 20, layout: .rgb, filledWith: 1)
        let black = try Image(width: 40, height: 20, layout: .rgb, filledWith: 0)
        try writeImage(white, to: temp.path("white.png"))
        try writeImage(black, to: temp.path("black.png"))
        let out = temp.path("sheet.png")
        let result = try CLI.run(["sheet", temp.path("white.png"), temp.path("black.png"), "--label", "INPUT",
                                  "--label", "output at 0.5", "--columns", "2", "--cell", "40", "--title", "Chisel",
                                  "--output", out])
        #expect(result.status == 0, "\(result.stderr)")
        let sheet = try ImageReader.read(path: out).image
        // Two cells of 40 + margins of 6; a title line, 3 label lines of 9 + 4, margins.
        #expect(sheet.width == 2 * 46 + 6)
        #expect(sheet.height == 15 + 40 + 31 + 6 + 6)
        let n = sheet.width * sheet.height
        func value(_ x: Int, _ y: Int) -> Float { sheet.pixels[y * sheet.width + x] }
        let top = 15 + 6
        #expect(value(6 + 20, top + 20) > 0.99)           // inside the white image (scaled to 40)
        #expect(value(52 + 20, top + 20) < 0.01)          // inside the black one
        #expect(abs(value(52 + 20, top + 2) - 0.92) < 0.01) // the band above the wide image
        // Labels are ink below the cells, and the title above.
        let labelRow = (top + 43)..<(top + 50)
        #expect(labelRow.contains { y in (6..<40).contains { value($0, y) < 0.2 } })
        #expect((6..<13).contains { y in (6..<40).contains { value($0, y) < 0.2 } })
        #expect(n > 0)
    }

    @Test func badSheetsAreRefused() throws {
        let temp = try TemporaryFolder()
        let missing = try CLI.run(["sheet", temp.path("nope.png"), "--output", temp.path("s.png")])
        #expect(missing.status != 0 && !missing.crashed)
        #expect(missing.stderr.contains("nope.png"), "\(missing.stderr)")
        let labels = try CLI.run(["sheet", temp.path("a.png"), "--label", "a", "--label", "b", "--output", temp.path("s.png")])
        #expect(labels.status == 64, "\(labels.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temp.path("s.png")))
    }
}
