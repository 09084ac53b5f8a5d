import ChiselCore
import Foundation

/// Writing to the terminal: results on stdout, problems and progress on stderr.
enum Terminal {
    private static let lock = NSLock()

    static func out(_ text: String, terminator: Bool = true) {
        write(terminator ? text + "\n" : text, to: STDOUT_FILENO)
    }

    static func err(_ text: String) {
        write(text + "\n", to: STDERR_FILENO)
    }

    /// Writes `text`, its control characters shown as escapes unless `raw` (the progress bar's own).
    static func write(_ text: String, to fd: Int32, raw: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        let handle = fd == STDERR_FILENO ? FileHandle.standardError : FileHandle.standardOutput
        try? handle.write(contentsOf: Data((raw ? text : printable(text)).utf8))
    }

    /// `text` with control characters other than newline and tab shown as `\u{1B}`: names and
    /// paths from graphs and images can hold any character, and none may drive the terminal.
    static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isControl) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isControl(scalar) {
                out.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar != "\n" && scalar != "\t" && (scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value))
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Prints each problem on its own line and returns the exit code for failure.
    static func report(_ error: any Error) {
        switch error {
        case let errors as ChiselErrors:
            for e in errors.errors { err("error: \(e)") }
        case let chisel as ChiselError:
            err("error: \(chisel)")
        default:
            err("error: \(error)")
        }
    }
}
