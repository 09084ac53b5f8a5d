import ChiselCore

/// Images side by side in a grid, each with a label below it and an optional title above: the
/// page a person looks at first after a run of edits (inputs next to outputs). Labels are drawn
/// with `BitmapFont`, so no font needs to be installed.
public enum ContactSheet {
    public struct Entry: Sendable {
        public var image: Image
        public var label: String

        public init(image: Image, label: String) {
            self.image = image
            self.label = label
        }
    }

    static let background: Float = 1, cellBackground: Float = 0.92, ink: Float = 0.1, margin = 6

    /// The sheet: rows of `columns` cells of `cell`×`cell` pixels, each image fitted inside
    /// (aspect kept, centred, Lanczos), its label wrapped to at most `labelLines` lines below;
    /// `title` above the grid. RGB, 8-bit.
    public static func render(_ entries: [Entry], columns: Int, cell: Int, title: String? = nil,
                              labelLines: Int = 3) throws -> Image {
        guard !entries.isEmpty else { throw ChiselError(.invalidParameter, "a contact sheet needs at least one image") }
        guard columns >= 1, cell >= 16, cell <= 4096, labelLines >= 0 else {
            throw ChiselError(.invalidParameter, "a contact sheet needs columns ≥ 1 and cells of 16…4096 pixels")
        }
        let columns = min(columns, entries.count)
        let rows = (entries.count + columns - 1) / columns
        let labelHeight = labelLines * BitmapFont.lineHeight + (labelLines > 0 ? 4 : 0)
        let titleHeight = title.map { $0.isEmpty ? 0 : BitmapFont.lineHeight + margin } ?? 0
        let width = columns * (cell + margin) + margin
        let height = titleHeight + rows * (cell + labelHeight + margin) + margin
        var canvas = Canvas(width: width, height: height, value: background)
        if let title, !title.isEmpty {
            canvas.text(title, x: margin, y: margin, maxCharacters: (width - 2 * margin) / BitmapFont.advance)
        }
        for (index, entry) in entries.enumerated() {
            let x0 = margin + (index % columns) * (cell + margin)
            let y0 = titleHeight + margin + (index / columns) * (cell + labelHeight + margin)
            canvas.fill(x: x0, y: y0, width: cell, height: cell, value: cellBackground)
            let rgb = entry.image.converted(to: .rgb)
            let fit = min(Double(cell) / Double(rgb.width), Double(cell) / Double(rgb.height))
            let (w, h) = (max(1, Int((Double(rgb.width) * fit).rounded())), max(1, Int((Double(rgb.height) * fit).rounded())))
            let scaled = w == rgb.width && h == rgb.height ? rgb.pixels
                : Resampler.resample(rgb.pixels, planes: 3, width: rgb.width, height: rgb.height, outWidth: w,
                                     outHeight: h, filter: .lanczos)
            canvas.paste(scaled, width: w, height: h, x: x0 + (cell - w) / 2, y: y0 + (cell - h) / 2)
            let perLine = max(1, cell / BitmapFont.advance)
            for (line, text) in wrap(entry.label, perLine: perLine).prefix(labelLines).enumerated() {
                canvas.text(text, x: x0, y: y0 + cell + 3 + line * BitmapFont.lineHeight, maxCharacters: perLine)
            }
        }
        return try Image(width: width, height: height, layout: .rgb, pixels: canvas.pixels)
    }

    /// Words in lines of at most `perLine` characters (longer words are cut).
    static func wrap(_ text: String, perLine: Int) -> [String] {
        var lines: [String] = [], current = ""
        for word in text.split(separator: " ").map(String.init) {
            var word = word
            while word.count > perLine {
                if !current.isEmpty { lines.append(current); current = "" }
                lines.append(String(word.prefix(perLine)))
                word = String(word.dropFirst(perLine))
            }
            if current.isEmpty { current = word } else if current.count + 1 + word.count <= perLine {
                current += " " + word
            } else {
                lines.append(current)
                current = word
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// Planar RGB pixels being drawn on.
    struct Canvas {
        let width: Int, height: Int
        var pixels: [Float]

        init(width: Int, height: Int, value: Float) {
            self.width = width
            self.height = height
            pixels = [Float](repeating: value, count: width * height * 3)
        }

        mutating func fill(x: Int, y: Int, width w: Int, height h: Int, value: Float) {
            for c in 0..<3 { for yy in max(0, y)..<min(height, y + h) { for xx in max(0, x)..<min(width, x + w) {
                pixels[(c * height + yy) * width + xx] = value
            } } }
        }

        mutating func paste(_ planes: [Float], width w: Int, height h: Int, x: Int, y: Int) {
            for c in 0..<3 { for yy in 0..<h where y + yy >= 0 && y + yy < height { for xx in 0..<w where x + xx >= 0 && x + xx < width {
                pixels[(c * height + y + yy) * width + x + xx] = planes[(c * h + yy) * w + xx]
            } } }
        }

        mutating func text(_ text: String, x: Int, y: Int, maxCharacters: Int) {
            for (i, character) in text.prefix(maxCharacters).enumerated() {
                for (row, bits) in BitmapFont.rows(character).enumerated() {
                    for column in 0..<BitmapFont.width where bits & (1 << (BitmapFont.width - 1 - column)) != 0 {
                        fill(x: x + i * BitmapFont.advance + column, y: y + row, width: 1, height: 1, value: ContactSheet.ink)
                    }
                }
            }
        }
    }
}
