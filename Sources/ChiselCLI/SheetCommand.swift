import ArgumentParser
import ChiselCore
import ChiselImageIO
import ChiselStages
import Foundation

/// `chisel sheet`: images side by side with labels in one PNG (a contact sheet).
struct SheetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sheet",
        abstract: "Lay images out in a labelled grid (a contact sheet), e.g. inputs next to their edits.",
        discussion: """
            Each image is fitted into a square cell (aspect kept) with its label below: the matching \
            --label in order, else the file's name. Labels are drawn with a built-in 5×7 font \
            (capitals, digits and common punctuation).
            """)

    @Argument(help: "The images, in reading order (PNG or JPEG).")
    var images: [String]

    @Option(help: "A label for the image at the same position; repeatable.")
    var label: [String] = []

    @Option(help: "Output PNG.")
    var output: String

    @Option(help: "Cells per row.")
    var columns: Int = 4

    @Option(help: "Cell side in pixels.")
    var cell: Int = 192

    @Option(help: "A line above the grid.")
    var title: String?

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard label.count <= images.count else { throw ValidationError("\(label.count) labels for \(images.count) images") }
        guard columns >= 1 else { throw ValidationError("--columns must be at least 1") }
        guard (16...4096).contains(cell) else { throw ValidationError("--cell must be in 16…4096") }
    }

    func run() async throws {
        let cwd = PathResolver.workingDirectory
        var entries: [ContactSheet.Entry] = []
        for (i, path) in images.enumerated() {
            let image = try ImageReader.read(path: cwd.resolve(path)).image
            let name = i < label.count ? label[i] : URL(fileURLWithPath: path).lastPathComponent
            entries.append(ContactSheet.Entry(image: image, label: name))
        }
        let sheet = try ContactSheet.render(entries, columns: columns, cell: cell, title: title)
        let path = cwd.resolve(output)
        if let reason = OutputPolicy.unwritable(path) { throw ChiselError(.io, reason, file: path) }
        try ImageWriter.write(sheet, to: path)
        Terminal.out("wrote \(output)")
    }
}
